"""The ``occ`` entry point: the root command, lazy subcommands and error rendering."""

from __future__ import annotations

import signal
import sys

import click

from opencode_cloud import __version__
from opencode_cloud.cli.lazy_group import LazyGroup
from opencode_cloud.cli.state import AppState, global_options
from opencode_cloud.errors import OccError

_C = "opencode_cloud.cli.commands"

# name -> (module:attribute, one-line help). Modules load only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "config": (f"{_C}.config:config_group", "Show and change occ's settings (config.json)."),
    "setup": (f"{_C}.setup:setup_command", "A guided first run: where, port, keys; then start."),
    "start": (f"{_C}.start:start_command", "Start the opencode service (idempotent)."),
    "stop": (f"{_C}.stop:stop_command", "Stop the service; volumes and settings stay."),
    "restart": (f"{_C}.restart:restart_command", "Restart the service (applies settings)."),
    "status": (f"{_C}.status:status_command", "Show whether the service runs and answers."),
    "logs": (f"{_C}.logs:logs_command", "Show the service's logs (-f to follow)."),
    "update": (f"{_C}.update:update_command", "Update opencode; rolls back if unhealthy."),
    "credentials": (f"{_C}.credentials:credentials_command", "Print the web UI's login."),
    "open": (f"{_C}.open:open_command", "Open the web UI here (SSH-forwarded for a host)."),
    "cockpit": (f"{_C}.cockpit:cockpit_command", "Open the Cockpit web console."),
    "reset": (f"{_C}.reset:reset_command", "Remove the container (volumes need --force)."),
    "backup": (f"{_C}.backup:backup_command", "Back up the service's volumes and login."),
    "restore": (f"{_C}.restore:restore_command", "Restore a backup (moves to another host)."),
    "exec": (f"{_C}.exec:exec_command", "Run a command in the sandbox."),
    "shell": (f"{_C}.exec:shell_command", "An interactive shell in the sandbox."),
    "mount": (f"{_C}.mount:mount_group", "Mount folders of the target into the sandbox."),
    "host": (f"{_C}.host:host_group", "Manage remote hosts (hosts.json) and SSH connections."),
    "completion": (f"{_C}.completion:completion_command", "Print the shell completion script."),
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="occ")
@global_options
def cli() -> None:
    """Run the opencode AI coding agent's web UI as a persistent, password-protected
    service in Docker, on this machine or on any server you reach over SSH.

    \b
    Quick start:
      occ setup            a few questions (where, port, API keys), then it starts
      occ start            build the image, start the service, print URL and login
      occ credentials      show the username and password
      occ status           is it running and healthy?
    """


def _exit_on_signal(signum: int, _frame: object) -> None:
    # Unwind like Ctrl-C does, so SSH forwards and other resources are released.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    # SIGTERM (kill, a service manager) and SIGHUP (the terminal window was closed).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    state = AppState()
    from opencode_cloud import report

    report.lock_wait_notice = lambda text: _notice(state, text)
    try:
        result = cli.main(args=argv, prog_name="occ", standalone_mode=False, obj=state)
    except click.ClickException as exc:  # usage errors: exit 2, with Click's own message
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except OccError as exc:
        _render_error(state, exc)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # A bug or an unforeseen failure: still no traceback by default.
        _render_error(
            state,
            OccError(
                f"unexpected {type(exc).__name__}: {exc}",
                hint="Run again with -vv to see the traceback, and please report it.",
            ),
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _notice(state: AppState, text: str) -> None:
    from opencode_cloud.output.printer import Printer

    Printer(quiet=state.quiet, color=state.color).notice(text)


def _render_error(state: AppState, exc: OccError) -> None:
    from opencode_cloud.output.printer import Printer

    if state.verbose >= 2:
        import traceback

        traceback.print_exc()
    host = getattr(exc, "host", None) or state.target_host
    Printer(color=state.color, host=host).error(exc)
