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
@click.option("--images", is_flag=True, help="Also remove the service's images on the target "
              "(not those a container uses).")
@fleet_options
@global_options
def reset_command(volumes: bool, force: bool, images: bool) -> None:
    """Remove the container (volumes are kept unless --volumes --force).

    \b
    Examples:
      occ reset
      occ reset --images              # also frees the disk the images take
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
        run_on_hosts(hosts, service_work(lambda service: reset_one(service, volumes, images)),
                     summary=lambda removed: "removed " + ", ".join(removed) if removed
                     else "nothing to remove", to_json=lambda removed: {"removed": removed})
        return
    service = open_service()

    removed = reset(service, volumes)
    if removed:
        printer_of(service).success("Removed " + ", ".join(removed) + ".")
    elif not images:
        printer_of(service).line("Nothing to remove.")
    if images:
        report_images(service, printer_of(service))
    if not volumes:
        printer_of(service).detail("Volumes kept; 'occ start' creates a fresh container on them.")


def reset_one(service, volumes: bool, images: bool) -> list[str]:
    """One host's part of a fleet reset: what was removed, images included."""
    from opencode_cloud.service.images import remove_service_images
    from opencode_cloud.service.lifecycle import reset
    from opencode_cloud.service.status import format_bytes

    removed = reset(service, volumes)
    if images:
        removal = remove_service_images(service)
        if removal.removed:
            removed.append(f"{len(removal.removed)} images (freed "
                           f"{format_bytes(removal.freed_bytes)})")
    return removed


def report_images(service, out) -> None:
    """``--images`` on one target: what went, how much that freed, what stays and why."""
    from opencode_cloud.service.images import removal_summary, remove_service_images

    removal = remove_service_images(service)
    if removal.removed:
        out.success(removal_summary(removal))
    else:
        out.line("No images to remove.")
    for image, why in removal.kept:
        out.detail(f"Kept the image {image.name}: {why}.")
    for image, reason in removal.failed:
        out.warn(f"could not remove the image {image.name}: {reason}")
