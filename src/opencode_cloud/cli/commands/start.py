"""``occ start``: build or pull the image, start the service, wait until it answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts, service_work
from opencode_cloud.cli.service_target import (
    ServiceCommand,
    open_service,
    printer_of,
    readiness_timeout_option,
)
from opencode_cloud.cli.state import global_options

if TYPE_CHECKING:  # the service layer loads when the command runs, not for --help or TAB
    from opencode_cloud.service.context import ServiceContext
    from opencode_cloud.service.lifecycle import StartOutcome

HEADLINES = {
    "already-running": "opencode is already running.",
    "started": "opencode started.",
    "created": "opencode is up.",
    "recreated": "opencode is up (container recreated).",
}


@click.command("start", cls=ServiceCommand)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Publish the web UI on this port (saved as opencode_web_port; for --host H as "
    "H's own setting).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the web UI in the browser.")
@readiness_timeout_option()
@fleet_options
@global_options
def start_command(port: int | None, open_browser: bool, timeout: float) -> None:
    """Start the opencode service (idempotent).

    \b
    Examples:
      occ start
      occ start --port 3100 --open
      occ start --group production --parallel 5
    """
    from opencode_cloud.service.lifecycle import start

    hosts = fleet_hosts()
    if hosts is not None:
        if port is not None or open_browser:
            raise click.UsageError("--port and --open act on one target; with --group/--all "
                                   "set ports per host: occ host edit NAME --set "
                                   "opencode_web_port=N")
        run_on_hosts(hosts, service_work(lambda service: start(service, timeout)),
                     summary=started_summary)
        return
    if port is not None:
        save_port(port)
    service = start_here(timeout)
    if open_browser:
        from opencode_cloud.cli.commands.open import bring_home

        bring_home(service)


def save_port(port: int) -> None:
    """``--port`` is saved where it takes effect: for a host from hosts.json as that host's
    own setting (config.json's value would lose to it anyway), else in config.json."""
    from opencode_cloud.cli.service_target import save_target_settings
    from opencode_cloud.cli.state import app_state, make_printer
    from opencode_cloud.engine.target import resolve_host

    state = app_state()
    host = resolve_host(state.host, state.local)
    save_target_settings(host, {"opencode_web_port": port})
    if host is not None:
        make_printer(host.name).detail(
            f"Saved opencode_web_port {port} as {host.name}'s own setting (occ host edit "
            f"{host.name} --unset opencode_web_port undoes it).")


def start_here(timeout: float) -> ServiceContext:
    """Start the service on the command's one target and print what ``occ start`` prints
    (the URL, the username, the access); ``occ setup`` ends with this too."""
    from opencode_cloud.service.lifecycle import start

    service = open_service()
    outcome = start(service, timeout)
    report_started(service, outcome)
    return service


def started_summary(outcome: StartOutcome) -> str:
    version = f" (opencode {outcome.health.version})" if outcome.health.version else ""
    return HEADLINES[outcome.action].rstrip(".") + version


def url_of(service: ServiceContext) -> str:
    from opencode_cloud.service.spec import url_for

    return url_for(service.config.bind_address, service.config.opencode_web_port)


def report_started(service: ServiceContext, outcome: StartOutcome) -> None:
    out = printer_of(service)
    config = service.config
    version = f" (opencode {outcome.health.version})" if outcome.health.version else ""
    out.success(HEADLINES[outcome.action].rstrip(".") + version + ".")
    url = url_of(service)
    host = service.endpoint.host
    if host:
        url += f" (on {host}; from here: occ open --host {host})"
    pairs = [
        ("URL", url),
        ("Username", f"{outcome.credentials.username}   (password: occ credentials)"),
    ]
    if config.exposed_to_network:
        pairs.append(
            (
                "Access",
                f"network-exposed: listening on {config.bind_address}; anyone "
                f"who reaches {host or 'this machine'} gets the login page",
            )
        )
    else:
        pairs.append(("Access", f"local-only (bound to {config.bind_address})"))
    if config.cockpit_enabled:
        from opencode_cloud.service.spec import url_for

        pairs.append(("Cockpit", url_for(config.bind_address, config.cockpit_port)))
    out.key_values(pairs)
