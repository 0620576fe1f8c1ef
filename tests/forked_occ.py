"""Run the real `occ` in a child process forked from the test process.

The unit suite makes hundreds of end-to-end CLI calls. Each one as ``python -m
opencode_cloud`` pays for a new interpreter and for importing Click and occ again (about
80 ms); a fork of a process that has imported them already costs a few milliseconds. The
child is still a process of its own: it gets the environment, argv, file descriptors 0, 1
and 2 (a file or /dev/null, never a terminal) and exit status the subprocess would have,
and runs ``opencode_cloud.cli.main.main`` exactly as the console script does. Nothing of
its state comes back to the test process.

Tests that need a terminal, signals or a fresh interpreter (start-up imports, Ctrl-C,
pexpect) keep using real subprocesses.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence


def _child(args: Sequence[str], env: Mapping[str, str], stdin_fd: int, out_fd: int,
           err_fd: int) -> None:
    """Never returns: the child always leaves through os._exit (no pytest teardown)."""
    code = 1
    try:
        os.setpgid(0, 0)  # like a subprocess, away from the terminal's job control
        for fd, target in ((stdin_fd, 0), (out_fd, 1), (err_fd, 2)):
            os.dup2(fd, target)
        # pytest replaced sys.std* with its capture objects: go back to the real fds.
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      line_buffering=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT
                          else signal.default_int_handler)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["occ", *args]
        from opencode_cloud.cli.main import main

        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                sys.stderr.write(exc.code + "\n")
    except BaseException:  # a bug in occ or here: show it, as the interpreter would
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_forked(args: Sequence[str], env: Mapping[str, str], *, input: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, -m, opencode_cloud, *args], capture_output=True,
    text=True, ...)`` without the new interpreter; stdin is /dev/null unless ``input``."""
    import opencode_cloud.cli.main  # noqa: F401  (imported once here, shared by every fork)

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as given:
        if input is not None:
            given.write(input.encode())
            given.seek(0)
            stdin_fd = given.fileno()
        else:
            stdin_fd = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = os.fork()
            if pid == 0:
                _child(args, env, stdin_fd, out.fileno(), err.fileno())
        finally:
            if input is None:
                os.close(stdin_fd)
        status = _wait(pid, timeout, args)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            ["occ", *args], os.waitstatus_to_exitcode(status),
            out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def _wait(pid: int, timeout: float, args: Sequence[str]) -> int:
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise subprocess.TimeoutExpired(["occ", *args], timeout)
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
