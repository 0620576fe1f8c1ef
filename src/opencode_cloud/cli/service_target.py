"""Glue between the CLI and the service layer: which Engine, which settings, which printer."""

from __future__ import annotations

from typing import Any

import click

from opencode_cloud.cli.state import app_state, make_printer
from opencode_cloud.config.store import load_config
from opencode_cloud.errors import OccError
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.names import ServiceNames


def open_service(ctx: click.Context | None = None) -> ServiceContext:
    """The ServiceContext for the target chosen by --host/--local/the default host.

    A remote target's SSH forward is torn down when the command's context closes, also
    on errors and Ctrl-C.
    """
    from opencode_cloud.engine.target import engine_for, resolve_host

    ctx = ctx or click.get_current_context()
    state = app_state(ctx)
    config = load_config()
    host = resolve_host(state.host, state.local)
    if host is not None and host.config.settings:
        from opencode_cloud.config import paths
        from opencode_cloud.config.store import with_overrides

        source = f"{paths.hosts_file()} (settings of host '{host.name}')"
        config = with_overrides(config, host.config.settings, source)
    state.target_host = host.name if host is not None else None
    printer = make_printer(state.target_host, ctx)
    endpoint = ctx.with_resource(engine_for(host, printer))
    ctx.call_on_close(endpoint.close)
    state.endpoint = endpoint
    return ServiceContext(endpoint, config, ServiceNames.from_environment(), printer, state.verbose)


class ServiceCommand(click.Command):
    """A container command: failures to talk to the Engine become explained OccErrors while
    the target's connection is still open (a remote one is asked why over SSH). When the
    target can repair the problem (Docker missing on a host: install it after asking), the
    command runs once more."""

    def invoke(self, ctx: click.Context) -> Any:
        for attempt in (1, 2):
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort,
                    KeyboardInterrupt):
                raise
            except Exception as exc:
                endpoint = app_state(ctx).endpoint
                problem = exc if isinstance(exc, OccError) else engine_failure(endpoint, exc)
                if problem is None:
                    raise
                if attempt == 1 and endpoint is not None and endpoint.repair is not None \
                        and endpoint.repair(problem):
                    continue
                if problem is exc:
                    raise
                raise problem from exc
        raise AssertionError("unreachable")


def engine_failure(endpoint, exc: Exception) -> OccError | None:
    """An OccError for an Engine that refused or could not be reached; None for bugs."""
    module = type(exc).__module__.split(".")[0]
    if endpoint is None or module not in {"docker", "requests", "urllib3"}:
        return None
    explanation = getattr(exc, "explanation", None)
    if explanation:  # the Engine answered, with an error
        return OccError(
            f"Docker {endpoint.where} refused: {explanation}",
            hint="Run again with -vv for details.",
        )
    return endpoint.explain(exc)


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
    if not click.get_text_stream("stdin").isatty():
        raise OccError(
            f"{question} needs confirmation and there is no terminal to ask",
            hint=f"Add {flag} to go ahead without asking.",
        )
    click.confirm(question, abort=True)
