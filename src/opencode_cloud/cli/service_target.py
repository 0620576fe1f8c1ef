"""Glue between the CLI and the service layer: which Engine, which settings, which printer."""

from __future__ import annotations

import click

from opencode_cloud.cli.state import app_state, make_printer
from opencode_cloud.config.store import load_config
from opencode_cloud.engine.target import resolve_endpoint
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.names import ServiceNames


def open_service(ctx: click.Context | None = None) -> ServiceContext:
    """The ServiceContext for the target chosen by --host/--local (closed with the command)."""
    ctx = ctx or click.get_current_context()
    state = app_state(ctx)
    config = load_config()
    endpoint = resolve_endpoint(state.host, state.local)
    service = ServiceContext(
        endpoint,
        config,
        ServiceNames.from_environment(),
        make_printer(endpoint.host, ctx),
        state.verbose,
    )
    ctx.call_on_close(endpoint.close)
    return service


def readiness_timeout_option(help_text: str = "Seconds to wait for opencode to answer."):
    from opencode_cloud.service.lifecycle import DEFAULT_START_TIMEOUT

    return click.option(
        "--timeout",
        type=click.FloatRange(1),
        default=DEFAULT_START_TIMEOUT,
        show_default=True,
        help=help_text,
    )


def confirm_or_fail(question: str, flag: str) -> None:
    """Ask in a terminal; without one, fail and name the flag that skips the question."""
    from opencode_cloud.errors import OccError

    if not click.get_text_stream("stdin").isatty():
        raise OccError(
            f"{question} needs confirmation and there is no terminal to ask",
            hint=f"Add {flag} to go ahead without asking.",
        )
    click.confirm(question, abort=True)
