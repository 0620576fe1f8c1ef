"""``occ stop``: stop the service gracefully (idempotent)."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts, service_work
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import global_options


@click.command("stop", cls=ServiceCommand)
@click.option(
    "--timeout",
    type=click.IntRange(0),
    default=30,
    show_default=True,
    help="Seconds to wait for a graceful stop before killing.",
)
@fleet_options
@global_options
def stop_command(timeout: int) -> None:
    """Stop the opencode service; its volumes and settings stay.

    \b
    Examples:
      occ stop --timeout 10
      occ stop --all
    """
    from opencode_cloud.service.lifecycle import stop

    hosts = fleet_hosts()
    if hosts is not None:
        run_on_hosts(hosts, service_work(lambda service: stop(service, timeout)),
                     summary=lambda stopped: "stopped" if stopped else "was not running",
                     to_json=lambda stopped: {"stopped": stopped})
        return
    service = open_service()
    if stop(service, timeout):
        printer_of(service).success("opencode stopped. Your work is kept; 'occ start' resumes.")
    else:
        printer_of(service).line("opencode is not running; nothing to stop.")
