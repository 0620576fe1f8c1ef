"""Run a command in the sandbox over the target's Docker connection: ``occ exec`` and
``occ shell``.

The command runs through the Engine's exec API on the same forwarded socket every other
operation uses (never a TCP port). Its output is the command's own: with a terminal
(``tty``) one raw stream, without one stdout and stderr apart, each to its own file
descriptor. The caller hands in the descriptors and, for a terminal, tells of window
sizes through :meth:`SandboxExec.resize`; this module never touches a terminal itself.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence

from opencode_cloud.engine.exec_stream import STDERR, open_exec
from opencode_cloud.errors import NotRunningError
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.names import HOME

WORKDIR = f"{HOME}/workspace"
SANDBOX_USER = "opencoder"


class SandboxExec:
    def __init__(self, ctx: ServiceContext, argv: Sequence[str], *, user: str = SANDBOX_USER,
                 tty: bool = False, with_input: bool = True) -> None:
        container = ctx.container()
        if container is None or container.status != "running":
            raise NotRunningError(f"opencode is not running {ctx.endpoint.where}",
                                  hint="Start it first: occ start")
        self.api = ctx.client.api
        self.tty = tty
        self.with_input = with_input
        env = {"HOME": HOME if user == SANDBOX_USER else "/root", "USER": user}
        if tty:
            env["TERM"] = os.environ.get("TERM", "xterm-256color")
        self.exec_id = self.api.exec_create(container.id, list(argv), stdin=with_input, tty=tty,
                                            user=user, environment=env,
                                            workdir=WORKDIR)["Id"]

    def resize(self, rows: int, columns: int) -> None:
        self.api.exec_resize(self.exec_id, height=rows, width=columns)

    def run(self, stdin_fd: int | None, stdout_fd: int, stderr_fd: int, *,
            on_start=None) -> int:
        """Start it, copy input and output until it ends; returns its exit status.
        ``on_start()`` runs once it has started (a terminal's size can only be set then)."""
        stream = open_exec(self.api, self.exec_id, self.tty)
        if on_start is not None:
            on_start()
        if self.with_input:
            feeder = threading.Thread(target=_feed, args=(stdin_fd, stream.sock), daemon=True)
            feeder.start()
        try:
            for which, data in stream.frames():
                _write_all(stderr_fd if which == STDERR else stdout_fd, data)
        finally:
            stream.close()
        code = self.api.exec_inspect(self.exec_id).get("ExitCode")
        return 255 if code is None else int(code)


def stdin_given(fd: int | None) -> bool:
    """Is there input to pass on? Not for /dev/null (scripts, CI): the command then gets
    no stdin at all, instead of an end of input that races its output over SSH."""
    if fd is None:
        return False
    try:
        return not os.path.samestat(os.fstat(fd), os.stat(os.devnull))
    except OSError:
        return False


def _feed(stdin_fd: int | None, sock: socket.socket) -> None:
    """Input to the command until it ends; then half-close, so the command sees EOF."""
    try:
        while stdin_fd is not None:
            data = os.read(stdin_fd, 65536)
            if not data:
                break
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the command ended first: nothing more to give it


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
