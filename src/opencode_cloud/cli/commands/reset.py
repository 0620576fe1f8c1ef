"""``occ reset``: remove the container, and with --volumes --force the work too."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts, service_work
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import OccError


@click.command("reset", cls=ServiceCommand)
@click.option(
    "--volumes",
    is_flag=True,
    help="Also delete the volumes: workspace, sessions, opencode settings, and the credentials.",
)
@click.option("--force", is_flag=True, help="Required with --volumes: really delete them.")
@fleet_options
@global_options
def reset_command(volumes: bool, force: bool) -> None:
    """Remove the container (volumes are kept unless --volumes --force).

    \b
    Examples:
      occ reset
      occ reset --volumes --force     # deletes your workspace and sessions
    """
    from opencode_cloud.service.lifecycle import reset
    from opencode_cloud.service.names import ServiceNames

    if volumes and not force:  # refused before any connection is made
        raise OccError(
            "refusing to delete the volumes without --force: they hold the workspace, "
            "opencode's sessions and settings, and the credentials "
            f"({', '.join(ServiceNames.from_environment().volumes)})",
            hint="Back up what you need, then run 'occ reset --volumes --force'.",
        )
    hosts = fleet_hosts()
    if hosts is not None:
        run_on_hosts(hosts, service_work(lambda service: reset(service, volumes)),
                     summary=lambda removed: "removed " + ", ".join(removed) if removed
                     else "nothing to remove", to_json=lambda removed: {"removed": removed})
        return
    service = open_service()

    removed = reset(service, volumes)
    if removed:
        printer_of(service).success("Removed " + ", ".join(removed) + ".")
    else:
        printer_of(service).line("Nothing to remove.")
    if not volumes:
        printer_of(service).detail("Volumes kept; 'occ start' creates a fresh container on them.")
