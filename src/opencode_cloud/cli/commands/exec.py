"""``occ exec`` and ``occ shell``: a command, or a login shell, in the sandbox."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import click

from opencode_cloud.cli.fleet import one_target_only
from opencode_cloud.cli.service_target import ServiceCommand, open_service
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import OccError


@click.command("exec", cls=ServiceCommand, context_settings={"ignore_unknown_options": True})
@click.option("--user", "-u", default="opencoder", show_default=True, metavar="USER",
              help="Run as this user of the sandbox (root for system changes).")
@click.option("--tty", "-t", is_flag=True, help="Give the command a terminal (interactive "
              "programs); stdout and stderr then come as one stream.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@one_target_only
@global_options
def exec_command(user: str, tty: bool, command: tuple[str, ...]) -> None:
    """Run a command in the sandbox; its output and exit status are its own.

    \b
    Examples:
      occ exec -- git -C ~/workspace status
      occ exec --host prod-1 -- sh -c 'echo out; echo err >&2; exit 7'
      occ exec --user root -- apt-get install -y ripgrep
    """
    if tty and not sys.stdin.isatty():
        raise OccError("--tty needs a terminal on this side", hint="Leave out --tty.")
    sys.exit(run_in_sandbox(list(command), user=user, tty=tty))


@click.command("shell", cls=ServiceCommand)
@click.option("--user", "-u", default="opencoder", show_default=True, metavar="USER",
              help="Log in as this user of the sandbox.")
@one_target_only
@global_options
def shell_command(user: str) -> None:
    """An interactive login shell in the sandbox (its window size follows yours).

    \b
    Examples:
      occ shell
      occ shell --host prod-1 --user root
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise OccError("occ shell needs a terminal",
                       hint="For a command without one: occ exec -- COMMAND")
    sys.exit(run_in_sandbox(["bash", "-l"], user=user, tty=True))


def run_in_sandbox(argv: list[str], *, user: str, tty: bool) -> int:
    from opencode_cloud.service.sandbox_exec import SandboxExec, stdin_given

    service = open_service()
    stdin = sys.stdin.fileno()
    job = SandboxExec(service, argv, user=user, tty=tty, with_input=tty or stdin_given(stdin))
    if not tty:
        return job.run(stdin, sys.stdout.fileno(), sys.stderr.fileno())
    with raw_terminal(stdin), window_size_follows(job) as resize:
        return job.run(stdin, sys.stdout.fileno(), sys.stderr.fileno(), on_start=resize)


@contextlib.contextmanager
def raw_terminal(fd: int):
    """Keys go to the sandbox as typed (Ctrl-C included); the terminal is restored after."""
    import termios
    import tty as tty_module

    saved = termios.tcgetattr(fd)
    try:
        tty_module.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def window_size_follows(job):
    def resize(*_args: object) -> None:
        size = os.get_terminal_size(sys.stdout.fileno())
        with contextlib.suppress(Exception):  # the command may have just ended
            job.resize(size.lines, size.columns)

    previous = signal.signal(signal.SIGWINCH, resize)
    try:
        yield resize  # called once the command runs, then on every window change
    finally:
        signal.signal(signal.SIGWINCH, previous)
