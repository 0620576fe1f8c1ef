"""Global options shared by every command, accepted before or after the subcommand."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppState:
    verbose: int = 0
    quiet: bool = False
    no_color: bool = False
    host: str | None = None
    local: bool = False
    # Set once a container command knows its target: errors are prefixed with the host and
    # explained by asking its Engine (see cli/service_target.py).
    target_host: str | None = None
    endpoint: Any = None
    engine: Any = None  # the context manager that yielded the endpoint (RemoteEngine, …)
    reporter: Any = None
    # --group/--all/--parallel of a fleet command (cli/fleet.py)
    groups: tuple[str, ...] = ()
    all_hosts: bool = False
    parallel: int | None = None
    # image_source ship: this machine's Engine as the source for the command's hosts
    ship_source: Any = None

    @property
    def color(self) -> bool:
        return not self.no_color and "NO_COLOR" not in os.environ


def app_state(ctx: click.Context | None = None) -> AppState:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if root.obj is None:
        root.obj = AppState()
    return root.obj


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        state = app_state(ctx)
        if attr == "verbose":
            state.verbose += value  # -v before and after the subcommand add up
        elif value not in (None, False):
            setattr(state, attr, value)

    return callback


def complete_with(name: str):
    """A completion function from cli/completion.py, imported only when the shell asks."""
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str):
        from opencode_cloud.cli import completion

        return getattr(completion, name)(ctx, param, incomplete)

    return complete


# (flags, settings, help) of each global option; every one stores into AppState.
_GLOBAL_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any], str]] = [
    (("-v", "--verbose"), {"count": True}, "More detail; -vv shows tracebacks."),
    (("-q", "--quiet"), {"is_flag": True}, "Print only errors; the exit status tells the result."),
    (("--no-color",), {"is_flag": True}, "No colours (also when NO_COLOR is set)."),
    (
        ("--host",),
        {"metavar": "NAME", "shell_complete": complete_with("host_names")},
        "Act on this remote host from hosts.json ('local' = this machine).",
    ),
    (("--local",), {"is_flag": True}, "Act on this machine even if a default host is set."),
]


def global_options(func: F) -> F:
    """Attach the global options to a command or group; their values land in AppState."""
    options = [
        click.option(
            *flags,
            expose_value=False,
            help=text,
            callback=_store(flags[-1].lstrip("-").replace("-", "_")),
            **settings,
        )
        for flags, settings, text in _GLOBAL_OPTIONS
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_printer(host: str | None = None, ctx: click.Context | None = None):
    """A Printer honouring -q and --no-color/NO_COLOR, prefixing lines with ``[host]``."""
    from opencode_cloud.output.printer import Printer

    state = app_state(ctx)
    return Printer(quiet=state.quiet, color=state.color, host=host)


def interactive() -> bool:
    """Can a person answer questions here (stdin is a terminal)?"""
    return sys.stdin is not None and sys.stdin.isatty()


def make_reporter(host: str | None = None, ctx: click.Context | None = None):
    """The reporter of a command on one target: lines (prefixed with ``[host]``), a
    spinner for the current step, and questions when there is a terminal."""
    from opencode_cloud.output.console import ConsoleReporter

    state = app_state(ctx)
    return ConsoleReporter(make_printer(host, ctx), verbose=state.verbose,
                           interactive=interactive())


def require_local_only(ctx: click.Context) -> None:
    """Commands about this machine's own files refuse --host instead of ignoring it."""
    from opencode_cloud.errors import OccError

    state = app_state(ctx)
    if state.host not in (None, "local"):
        raise OccError(
            f"'{ctx.command_path}' manages this machine's own settings and does not take --host",
            hint=f"Run it without --host {state.host}.",
        )


class LocalOnlyCommand(click.Command):
    """A command that refuses --host. Checked at invoke time, when options given after the
    subcommand have been parsed too."""

    def invoke(self, ctx: click.Context) -> Any:
        require_local_only(ctx)
        return super().invoke(ctx)


class LocalOnlyGroup(click.Group):
    """A group whose subcommands (and subgroups) are all LocalOnlyCommands."""

    command_class = LocalOnlyCommand
    group_class = type  # subgroups are LocalOnlyGroups too
