"""Glue between the CLI and the service layer: which Engine, which settings, which reporter.

Container commands call :func:`open_service` for the target chosen by --host/--local/the
default host, run a service operation on it, and render the value it returns with the
printer from :func:`printer_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from opencode_cloud.cli.state import app_state, interactive, make_reporter
from opencode_cloud.errors import OccError

if TYPE_CHECKING:  # the service layer loads when a command runs, not for --help or TAB
    from opencode_cloud.service.context import ServiceContext


def host_config(config, host):
    """config.json with the host's own settings (hosts.json ``settings``) on top. Keys
    that name things of one machine (``mounts``) come from the host's settings only."""
    if host is None:
        return config
    from opencode_cloud.config import paths
    from opencode_cloud.config.model import MACHINE_KEYS, Config
    from opencode_cloud.config.store import with_overrides

    own = {key: getattr(Config(), key) for key in MACHINE_KEYS if getattr(config, key)}
    settings = {**own, **host.config.settings}
    if not settings:
        return config
    source = f"{paths.hosts_file()} (settings of host '{host.name}')"
    return with_overrides(config, settings, source)


def save_target_settings(host, values: dict[str, Any]) -> None:
    """Save config values where they take effect for the target: for a host from hosts.json
    as its own settings (config.json's value would lose to them anyway), else in
    config.json. Validated like a hand edit; nothing is written if one is bad."""
    if not values:
        return
    if host is None:
        from opencode_cloud.config import store

        def change_config(current):
            for key, value in values.items():
                current = store.with_value(current, key, value)
            return current

        store.change_config(change_config)
        return
    from opencode_cloud.hosts import store as hosts_store

    def change(hosts):
        current = hosts.hosts.get(host.name)
        if current is None:
            raise hosts_store.unknown_host(host.name, hosts)
        return hosts.with_host(host.name,
                               current.changed(settings={**current.settings, **values}))

    hosts_store.change_hosts(change)


def open_service(ctx: click.Context | None = None) -> ServiceContext:
    """The ServiceContext for the target chosen by --host/--local/the default host.

    A remote target's SSH forward is torn down when the command's context closes, also
    on errors and Ctrl-C.
    """
    from opencode_cloud.config.store import load_config
    from opencode_cloud.engine.target import engine_for, resolve_host
    from opencode_cloud.service.context import ServiceContext
    from opencode_cloud.service.names import ServiceNames

    ctx = ctx or click.get_current_context()
    state = app_state(ctx)
    host = resolve_host(state.host, state.local)
    config = host_config(load_config(), host)
    state.target_host = host.name if host is not None else None
    reporter = make_reporter(state.target_host, ctx)
    engine = engine_for(host, reporter)
    endpoint = ctx.with_resource(engine)
    ctx.call_on_close(endpoint.close)
    state.endpoint, state.engine, state.reporter = endpoint, engine, reporter
    return ServiceContext(endpoint, config, ServiceNames.from_environment(), reporter,
                          ship=ship_source(ctx) if host is not None else None)


def ship_source(ctx: click.Context | None = None):
    """This machine's Engine as the source of ``image_source: ship`` for the command (one
    for all its hosts, so an image is made and packed once); closed with the command,
    which deletes its spool. Nothing connects until a host needs an image."""
    from opencode_cloud.config import paths
    from opencode_cloud.engine.endpoint import DockerEndpoint
    from opencode_cloud.image.ship import ShipSource

    ctx = ctx or click.get_current_context()
    state = app_state(ctx)
    if state.ship_source is None:
        endpoint = DockerEndpoint.from_environment()
        state.ship_source = ShipSource(endpoint, lock_dir=paths.data_dir())
        ctx.call_on_close(state.ship_source.close)
        ctx.call_on_close(endpoint.close)
    return state.ship_source


def printer_of(service: ServiceContext):
    """The printer that renders this command's results (prefixed for a remote target)."""
    return service.reporter.printer


class ServiceCommand(click.Command):
    """A container command: failures to talk to the Engine become explained OccErrors while
    the target's connection is still open (a remote one is asked why over SSH). When Docker
    is missing or stopped on a host or on this machine and a person can be asked, occ
    offers to install or start it there, and the command runs once more."""

    def invoke(self, ctx: click.Context) -> Any:
        return run_repairing(ctx, lambda: super(ServiceCommand, self).invoke(ctx))


def run_repairing(ctx: click.Context, work: Callable[[], Any], *,
                  assume_yes: bool = False) -> Any:
    """Run ``work`` (a container command's body) as :class:`ServiceCommand` runs it: Engine
    failures explained, and a missing or stopped Docker offered for repair once
    (``assume_yes``: repaired without asking, for ``occ setup --yes``)."""
    for attempt in (1, 2):
        try:
            return work()
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort,
                KeyboardInterrupt):
            raise
        except Exception as exc:
            state = app_state(ctx)
            problem = exc if isinstance(exc, OccError) else engine_failure(state.endpoint, exc)
            if problem is None:
                raise
            if attempt == 1 and offer_repair(state, problem, assume_yes):
                continue
            if problem is exc:
                raise
            raise problem from exc
    raise AssertionError("unreachable")


def offer_repair(state, problem: OccError, assume_yes: bool = False) -> bool:
    """Docker missing or stopped on the host or on this machine: offer to install or start
    it, as ``occ host install-docker`` does (it asks first, unless ``assume_yes``). True
    when the command is worth running again."""
    from opencode_cloud.engine.endpoint import DockerUnavailable
    from opencode_cloud.engine.probe import DockerProblem, DockerState
    from opencode_cloud.engine.remote import RemoteEngine

    engine, reporter = state.engine, state.reporter
    if reporter is None or not (reporter.interactive or assume_yes):
        return False  # nobody to ask: the problem's own hint names install-docker
    endpoint = state.endpoint
    if endpoint is not None and endpoint.host is None:  # this machine
        if not isinstance(problem, DockerUnavailable) or not problem.absent:
            return False
        from opencode_cloud.install.local import offer_local_docker_install

        reporter.warn(problem.message)  # why occ offers what follows
        offer_local_docker_install(endpoint.base_url, reporter, assume_yes=assume_yes)
        endpoint.close()  # a client made before the Engine answered is of no use
        return True
    if not isinstance(engine, RemoteEngine):
        return False
    if not isinstance(problem, DockerProblem) or problem.state not in (
            DockerState.MISSING, DockerState.NOT_RUNNING):
        return False
    from opencode_cloud.install.installer import offer_docker_install

    reporter.warn(problem.message)
    offer_docker_install(engine.connection, engine.host, reporter, assume_yes=assume_yes)
    # The install opened a new master (for the docker group); the forwards made on the
    # way are stale or spent. The command's second run makes its own.
    engine.connection.close()
    return True


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
    from opencode_cloud.service import DEFAULT_START_TIMEOUT

    return click.option(
        "--timeout",
        type=click.FloatRange(1),
        default=DEFAULT_START_TIMEOUT,
        show_default=True,
        help=help_text,
    )


def confirm_or_fail(question: str, flag: str) -> None:
    """Ask in a terminal; without one, fail and name the flag that skips the question."""
    if not interactive():
        raise OccError(
            f"{question} needs confirmation and there is no terminal to ask",
            hint=f"Add {flag} to go ahead without asking.",
        )
    click.confirm(question, abort=True)
