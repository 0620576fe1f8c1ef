"""``HostConnection``: the one place that runs ssh processes for a remote host.

One master connection per host (ControlMaster) is opened on first use and reused by every
later ssh process, here and in later occ commands, until it has been idle for
ControlPersist or ``occ host disconnect`` closes it. Every other ssh process occ starts is
waited for, and killed if occ is interrupted or fails, so only the master outlives a
command.

Retries and other remarks go to the injected :class:`~opencode_cloud.report.Reporter`;
whether ssh may prompt (for a key's passphrase) is the reporter's ``interactive``.

Typical use (issue 5 routes Docker through this)::

    with HostConnection(resolve_host("web1"), reporter) as conn:
        conn.ensure_master()                       # prompts/retries as needed
        result = conn.run(["docker", "ps"])        # CompletedProcess, remote exit status
        conn.forward_unix_socket(local, "/var/run/docker.sock")
        ...                                        # talk to the forwarded socket
    # leaving the block cancels the forwards; the master stays for the next command
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opencode_cloud.hosts.model import Host
from opencode_cloud.report import SILENT, Reporter
from opencode_cloud.ssh import argv as build
from opencode_cloud.ssh import mux
from opencode_cloud.ssh.config import (
    HostFiles,
    host_files,
    host_key_policy_problem,
    known_hosts_names,
    render_ssh_config,
)
from opencode_cloud.ssh.errors import (
    RETRYABLE,
    Destination,
    Problem,
    SshError,
    classify,
    make_error,
)
from opencode_cloud.ssh.settings import RETRIES, SshSettings, ensure_control_dir, load_settings

MASTER_TIMEOUT = 60.0  # seconds for a non-interactive master start (handshake and auth)
STREAM_IDLE_FLUSH = 0.5  # seconds before an unfinished output line (a prompt) is shown
CONTROL_TIMEOUT = 15.0  # seconds for -O check/exit/forward/cancel (local requests)
_MASTER_PID = re.compile(r"Master running \(pid=(\d+)\)")
_SERIALS = itertools.count(1)
# Every ssh process a command is waiting for (not the detached masters), so that a fleet
# run that is cancelled can end them from its main thread: end_children().
_CHILDREN: set[subprocess.Popen[bytes]] = set()
_CHILDREN_LOCK = threading.Lock()


@contextlib.contextmanager
def _tracked(proc: subprocess.Popen[bytes]):
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    try:
        yield proc
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(proc)


def end_children() -> None:
    """Kill and reap every ssh process occ still waits for (the masters stay)."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        with contextlib.suppress(OSError):
            proc.kill()
    for proc in children:
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)


def retry_delays(base: float, retries: int = RETRIES) -> list[float]:
    """1 s, 2 s, 4 s for the default base: exponential backoff."""
    return [base * 2**k for k in range(retries)]


def format_delay(seconds: float) -> str:
    return f"{seconds:g}s"


def run_process(argv: Sequence[str], *, stdin: Any = subprocess.DEVNULL,
                input: bytes | None = None, timeout: float | None = None,
                stderr_to_file: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run without a shell and never leave the process behind: on a timeout, Ctrl-C or any
    other exception the child is killed and reaped before the exception goes on.

    ``stderr_to_file``: for ``ssh -f``, whose background part (and jump process) may keep
    stderr open long after the foreground part has exited.
    """
    import tempfile

    if input is not None:
        stdin = subprocess.PIPE
    with contextlib.ExitStack() as stack:
        err_file = stack.enter_context(tempfile.TemporaryFile()) if stderr_to_file else None
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=subprocess.PIPE,
            stderr=err_file if err_file is not None else subprocess.PIPE,
        )
        stack.enter_context(_tracked(proc))
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if err_file is not None:
            err_file.seek(0)
            err = err_file.read()
        return subprocess.CompletedProcess(list(argv), proc.returncode, out, err or b"")


def stream_process(argv: Sequence[str], *, on_line: Callable[[str], None],
                   answer: Callable[[str], str | None] | None = None,
                   timeout: float | None = None,
                   idle_flush: float = STREAM_IDLE_FLUSH) -> int:
    """Run ``argv`` (no shell) and pass its output (stdout and stderr together) to
    ``on_line`` line by line as it arrives; returns its exit status. Used for ssh and, by
    the local installer, for commands on this machine.

    A line left unfinished for ``idle_flush`` seconds is a prompt waiting for an answer
    (such as sudo's): it goes to ``answer``, whose reply (if not None) is sent to the
    command's input as one line; without ``answer`` it is passed to ``on_line`` as it is,
    and the command reads nothing. On a timeout (subprocess.TimeoutExpired), Ctrl-C or any
    error the process is killed and reaped.
    """
    argv = list(argv)
    deadline = None if timeout is None else time.monotonic() + timeout
    lines = LineBuffer()

    def prompted(text: str) -> None:
        reply = answer(text) if answer is not None else None
        if reply is None:
            on_line(text)
            return
        assert proc.stdin is not None
        proc.stdin.write(reply.encode() + b"\n")
        proc.stdin.flush()

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.PIPE if answer else subprocess.DEVNULL)
    tracking = _tracked(proc)
    tracking.__enter__()
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            wait = idle_flush
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(argv, timeout or 0)
                wait = min(wait, left)
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                pending = lines.take_pending()
                if pending is not None:
                    prompted(pending)
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            for line in lines.feed(data):
                on_line(line)
        pending = lines.take_pending()
        if pending is not None:
            on_line(pending)
        return proc.wait(timeout=CONTROL_TIMEOUT)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        tracking.__exit__(None, None, None)
        for pipe in (proc.stdout, proc.stdin):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class HostConnection:
    """SSH to one host from hosts.json through a shared master connection.

    ``reporter`` announces retries; its ``interactive`` (or ``interactive`` given here) says
    whether ssh may prompt for a key's passphrase, on the terminal occ was started from.
    Otherwise ssh runs in BatchMode and fails at once instead of waiting for input nobody
    can give.
    """

    def __init__(self, host: Host, reporter: Reporter = SILENT, *,
                 interactive: bool | None = None,
                 settings: SshSettings | None = None, hosts_file: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from opencode_cloud.config import paths

        self.host = host
        self.reporter = reporter
        self.settings = settings or load_settings()
        self.hosts_file = hosts_file or paths.hosts_file()
        self.interactive = reporter.interactive if interactive is None else interactive
        self.files: HostFiles = host_files(host, self.settings, self.hosts_file)
        self.target = build.SshTarget.for_host(
            host, self.files, batch=not self.interactive,
            control_persist=self.settings.control_persist)
        self._sleep = sleep
        self._prepared = False
        self._forwards: list[tuple[str, str]] = []
        self._serial = next(_SERIALS)  # two connection objects never share a socket path
        # How each unix-socket forward was opened: "mux" (PROTOCOL.mux, no process) or
        # "ssh -O" (the fallback), so tests can tell the fast path is really taken.
        self.forward_paths: list[str] = []

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> HostConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------
    @property
    def destination(self) -> Destination:
        c = self.host.config
        return Destination(
            name=self.host.name, hostname=c.hostname, port=c.port, user=c.user,
            identity_file=c.identity_file,
            known_hosts=str(self.settings.known_hosts_for_hints),
        )

    def _error(self, stderr: str, *, attempts: int = 1,
               problem: Problem | None = None) -> SshError:
        from opencode_cloud.ssh.keys import key_file_is_encrypted

        problem = problem or classify(stderr)
        identity = self.host.config.identity_file
        encrypted = bool(identity) and key_file_is_encrypted(os.path.expanduser(identity))
        return make_error(problem, stderr, self.destination, batch=not self.interactive,
                          encrypted_key=encrypted, attempts=attempts)

    def prepare(self) -> None:
        """Create the private folder and (re)write this host's generated ssh configs."""
        if self._prepared:
            return
        from opencode_cloud.storage.safe_file import atomic_write

        ensure_control_dir(self.settings.control_dir)
        known = self.settings.known_hosts
        if known is not None and not known.parent.exists():
            # ssh cannot create it: every key would be "new" and none would ever be kept.
            known.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path, batch in ((self.files.config_file, False),
                            (self.files.batch_config_file, True)):
            text = render_ssh_config(self.host, self.settings, batch=batch)
            try:
                current = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                current = None
            if current != text:
                atomic_write(path, text)
        self._prepared = True

    def _control(self, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        return run_process(argv, timeout=CONTROL_TIMEOUT)

    # -- the master ---------------------------------------------------------------------
    def master_pid(self) -> int | None:
        """The running master's pid, or None (asks the master itself: ``ssh -O check``)."""
        self.prepare()
        if not self.files.control_path.exists():
            return None
        proc = self._control(build.check_argv(self.target))
        match = _MASTER_PID.search(proc.stderr.decode(errors="replace"))
        return int(match.group(1)) if proc.returncode == 0 and match else None

    def master_alive(self) -> bool:
        """Does a master accept connections on the control socket? (No process started.)"""
        self.prepare()
        return socket_accepts(self.files.control_path)

    def ensure_master(self) -> bool:
        """Open the master connection unless one runs; True if this call opened it.

        Connection problems are retried (1 s, 2 s, 4 s), each retry announced; problems
        with keys, host keys or configuration fail at once.
        """
        if self.master_alive():
            return False
        from opencode_cloud.storage.safe_file import lock_file

        # Two occ processes must not race for it; a passphrase prompt may take a while.
        with lock_file(self.files.lock_file, what=self.files.control_path, timeout=300):
            if self.master_alive():
                return False
            identity = self.host.config.identity_file
            if identity and not os.path.isfile(os.path.expanduser(identity)):
                raise SshError(
                    f"the identity file {identity} does not exist",
                    f"Point the host at an existing private key: occ host edit "
                    f"{self.host.name} -i PATH (or -i '' for your agent and ~/.ssh/config).",
                    problem=Problem.CONFIG, host=self.host.name)
            with contextlib.suppress(FileNotFoundError):
                self.files.control_path.unlink()  # a stale socket of a dead master
            known_hosts, key_name = self._check_host_key_policy()
            known_before = self._known_key_line(known_hosts, key_name)
            delays = retry_delays(self.settings.retry_delay)
            attempt = 0
            while True:
                attempt += 1
                problem, stderr = self._start_master()
                if problem is None:
                    if known_before is None:
                        self._announce_new_key(known_hosts, key_name)
                    return True
                if problem in RETRYABLE and attempt <= len(delays):
                    delay = delays[attempt - 1]
                    self.reporter.notice(
                        f"{self.destination.address}: {problem.value}, retrying in "
                        f"{format_delay(delay)} ({attempt}/{len(delays)})")
                    self._sleep(delay)
                    continue
                raise self._error(stderr, attempts=attempt, problem=problem)

    def _check_host_key_policy(self) -> tuple[list[str], str]:
        """Refuse a configuration that would accept any host key; return where the key of
        the target is kept (files, name)."""
        resolved = self.resolved_config()
        problem = host_key_policy_problem(resolved)
        if problem is not None:
            raise SshError(
                f"your ssh configuration sets {problem} for {self.host.config.hostname}, "
                "which would accept any host key (a man-in-the-middle could take over)",
                f"Remove that line for this host from {self.settings.user_config}, or give "
                "occ its own known_hosts: export OCC_SSH_KNOWN_HOSTS=~/.ssh/known_hosts_occ",
                problem=Problem.CONFIG, host=self.host.name)
        return known_hosts_names(resolved)

    def _known_key_line(self, files: list[str], name: str) -> str | None:
        """The SHA256 fingerprint line of the target's known key, None if it is new."""
        for path in files:
            if not os.path.exists(path):
                continue
            proc = run_process(build.known_key_argv(path, name), timeout=CONTROL_TIMEOUT)
            for line in proc.stdout.decode(errors="replace").splitlines():
                if "SHA256:" in line and not line.startswith("#"):
                    return line
        return None

    def _announce_new_key(self, files: list[str], name: str) -> None:
        """First connection: say which key was accepted, so it can be compared."""
        line = self._known_key_line(files, name)
        if line is None:
            return
        words = line.split()  # NAME KEYTYPE SHA256:... (ssh-keygen -l -F)
        fingerprint = next((w for w in words if w.startswith("SHA256:")), "")
        kind = words[1].upper() if len(words) > 2 else "host"
        self.reporter.notice(
            f"first connection to {self.destination.address}: accepted its {kind} host key "
            f"{fingerprint}. Compare it with the server's (ssh-keygen -lf "
            "/etc/ssh/ssh_host_*_key.pub there); occ refuses it if it ever changes.")

    def _start_master(self) -> tuple[Problem | None, str]:
        # Interactive: ssh asks for the passphrase on the terminal itself (inherited).
        stdin: Any = None if self.interactive else subprocess.DEVNULL
        try:
            proc = run_process(build.master_argv(self.target), stdin=stdin,
                               timeout=None if self.interactive else MASTER_TIMEOUT,
                               stderr_to_file=True)
        except subprocess.TimeoutExpired:
            return Problem.TIMEOUT, f"no answer within {MASTER_TIMEOUT:g} s (timed out)"
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode == 0:
            return None, stderr
        return classify(stderr), stderr

    def disconnect(self) -> bool:
        """Close the master (``ssh -O exit``); True if one was running."""
        self.close()
        running = self.master_pid() is not None
        if running:
            self._control(build.exit_argv(self.target))
        leftovers = [self.files.control_path,
                     *self.settings.control_dir.glob(f"{self.files.key}.*.docker.sock")]
        for leftover in leftovers:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return running

    # -- commands and forwards ----------------------------------------------------------
    def run(self, remote: str | Sequence[str], *, input: bytes | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a command on the host; returns its exit status and output as bytes.

        ``remote`` is an argv (quoted word by word) or one shell command string whose
        values the caller quoted. ssh's own failures raise SshError; the remote
        command's failures are the caller's to read from the result.
        """
        self.ensure_master()
        proc = run_process(build.ssh_argv(self.target, remote), input=input, timeout=timeout)
        if proc.returncode == 255:
            stderr = proc.stderr.decode(errors="replace")
            problem = classify(stderr)
            if problem is not Problem.OTHER:
                raise self._error(stderr, problem=problem)
        return proc

    def stream(self, remote: str | Sequence[str], *, on_line: Callable[[str], None],
               answer: Callable[[str], str | None] | None = None,
               timeout: float | None = None, idle_flush: float = STREAM_IDLE_FLUSH) -> int:
        """Run a command on the host and pass its output (stdout and stderr together) to
        ``on_line`` line by line as it arrives; returns the remote exit status.

        Prompts and answers as :func:`stream_process` describes. ssh's own failures raise
        SshError; on a timeout, Ctrl-C or any error the ssh process is killed and reaped.
        """
        self.ensure_master()
        recent: deque[str] = deque(maxlen=40)

        def emit(line: str) -> None:
            recent.append(line)
            on_line(line)

        returncode = stream_process(build.ssh_argv(self.target, remote), on_line=emit,
                                    answer=answer, timeout=timeout, idle_flush=idle_flush)
        if returncode == 255:
            text = "\n".join(recent)
            problem = classify(text)
            if problem is not Problem.OTHER:
                raise self._error(text, problem=problem)
        return returncode

    def forward_unix_socket(self, local_path: str, remote_path: str) -> str:
        """Make the master forward ``local_path`` (a new unix socket, 0600) to
        ``remote_path`` on the host; returns ``local_path``. Cancelled by close()."""
        for path in (local_path, remote_path):
            if ":" in path or not os.path.isabs(path):
                raise ValueError(f"socket path {path!r} must be absolute and without ':'")
        self.ensure_master()
        try:  # the same request `ssh -O forward` sends, without starting ssh
            mux.unix_forward(str(self.files.control_path), local_path, remote_path)
            self._forwards.append((local_path, remote_path))
            self.forward_paths.append("mux")
            return local_path
        except mux.MuxError as exc:  # let ssh itself try, and explain any failure
            self.reporter.detail(f"asking the master directly failed ({exc}); using ssh -O")
        self.forward_paths.append("ssh -O")
        proc = self._control(build.forward_argv(self.target, local_path, remote_path))
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            raise SshError(f"could not forward {local_path} to {remote_path}: "
                           f"{stderr.strip() or 'ssh -O forward failed'}",
                           "Check that the host's sshd allows it (AllowStreamLocalForwarding).",
                           problem=classify(stderr), host=self.host.name, stderr=stderr)
        self._forwards.append((local_path, remote_path))
        return local_path

    def docker_forward(self, remote_path: str) -> str:
        """A local socket forwarded to the host's Docker socket ``remote_path``, for this
        connection object only (private folder, 0600); returns its path. close() removes
        it, so no socket outlives the command that needed it."""
        local = str(self.settings.control_dir
                    / f"{self.files.key}.{os.getpid()}.{self._serial}.docker.sock")
        if (local, remote_path) in self._forwards:
            return local
        with contextlib.suppress(FileNotFoundError):
            os.unlink(local)  # left by an earlier process with the same pid that was killed
        return self.forward_unix_socket(local, remote_path)

    def forward_tcp(self, local_port: int, remote_address: str, remote_port: int) -> None:
        """Forward 127.0.0.1:``local_port`` here to ``remote_address:remote_port`` as seen
        from the host (the web UI). Cancelled by close()."""
        self.ensure_master()
        local, remote = build.tcp_forward_spec(local_port, remote_address, remote_port)
        proc = self._control(build.forward_argv(self.target, local, remote))
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            raise SshError(f"could not forward local port {local_port} to {remote} on the "
                           f"host: {stderr.strip() or 'ssh -O forward failed'}",
                           "Pick another local port with --local-port, or check that the "
                           "host's sshd allows TCP forwarding (AllowTcpForwarding).",
                           problem=classify(stderr), host=self.host.name, stderr=stderr)
        self._forwards.append((local, remote))

    def cancel_forward(self, local_path: str, remote_path: str) -> None:
        with contextlib.suppress(ValueError):
            self._forwards.remove((local_path, remote_path))
        if self.files.control_path.exists():
            try:
                if not local_path.startswith("/"):
                    raise mux.MuxError("a TCP forward: ssh cancels it")
                mux.unix_forward(str(self.files.control_path), local_path, remote_path,
                                 close=True)
            except mux.MuxError:
                self._control(build.cancel_forward_argv(self.target, local_path, remote_path))
        if local_path.startswith("/"):  # a unix socket (TCP forwards have no file)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(local_path)

    def close(self) -> None:
        """Cancel every forward this object opened (the master stays for later commands).
        A forward that cannot be cancelled is reported and does not stop the others."""
        for local_path, remote_path in list(self._forwards):
            try:
                self.cancel_forward(local_path, remote_path)
            except Exception as exc:  # noqa: BLE001  closing must reach every forward
                with contextlib.suppress(ValueError):
                    self._forwards.remove((local_path, remote_path))
                self.reporter.warn(f"could not cancel the forward {local_path}: {exc}")

    # -- configuration ------------------------------------------------------------------
    def resolved_config(self, *, baseline: bool = False) -> dict[str, list[str]]:
        """``ssh -G``'s effective options (lower-case names -> values), no network used.

        ``baseline``: what OpenSSH would use with no config files at all.
        """
        self.prepare()
        argv = (build.baseline_resolve_argv(self.host.config.hostname) if baseline
                else build.resolve_argv(self.target))
        proc = run_process(argv, timeout=CONTROL_TIMEOUT)
        if proc.returncode != 0:
            raise self._error(proc.stderr.decode(errors="replace"), problem=Problem.CONFIG)
        return parse_resolved(proc.stdout.decode(errors="replace"))


class LineBuffer:
    """Bytes in, whole lines out: decoded (bad bytes replaced), without their line ends.

    A carriage return inside a line (a progress counter redrawn in place) keeps only what
    was drawn last. An unfinished line taken early (a prompt) is not followed by an empty
    line when its line end arrives later.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._taken = False  # the current line was already passed on, unfinished

    @staticmethod
    def _text(raw: bytes) -> str:
        text = raw.decode(errors="replace").rstrip("\r")
        return text.rsplit("\r", 1)[-1]

    def feed(self, data: bytes) -> list[str]:
        if self._taken and data:
            self._taken = False
            if data.startswith(b"\r\n"):
                data = data[2:]
            elif data.startswith(b"\n"):
                data = data[1:]
        *complete, self._pending = (self._pending + data).split(b"\n")
        return [self._text(raw) for raw in complete]

    def take_pending(self) -> str | None:
        """The unfinished line so far (then forgotten), or None if there is none."""
        if not self._pending:
            return None
        raw, self._pending = self._pending, b""
        self._taken = True
        return self._text(raw)


def socket_accepts(path: Path) -> bool:
    """Does something listen on this unix socket? (A dead master leaves a stale file.)"""
    import socket

    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(2)
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def parse_resolved(text: str) -> dict[str, list[str]]:
    """Parse ``ssh -G`` output: one ``name value`` a line, some names repeated."""
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name:
            options.setdefault(name.lower(), []).append(value)
    return options
