"""``occ update``: move to the image of the configured opencode version, or roll back."""

from __future__ import annotations

import click

from opencode_cloud.cli.service_target import (
    ServiceCommand,
    confirm_or_fail,
    open_service,
    printer_of,
    readiness_timeout_option,
)
from opencode_cloud.cli.state import global_options


@click.command("update", cls=ServiceCommand)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before the short downtime.")
@click.option("--rollback", is_flag=True, help="Go back to the image used before the last update.")
@readiness_timeout_option("Seconds the new container gets to become healthy.")
@global_options
def update_command(yes: bool, rollback: bool, timeout: float) -> None:
    """Update opencode: rebuild or pull the image and recreate the container.

    Volumes and credentials are kept. If the new container does not become healthy, the
    previous image is restored automatically.

    \b
    Examples:
      occ config set opencode_version 1.18.33 && occ update --yes
      occ update --rollback --yes
    """
    from opencode_cloud.service import update

    service = open_service()
    out = printer_of(service)
    if rollback:
        if not yes:
            confirm_or_fail("Roll back and restart opencode (a short downtime)?", "--yes")
        result = update.rollback(service, timeout)
        out.success(
            f"Rolled back to {result.image}; opencode {result.opencode_version} is "
            "healthy. It stays on this image until the next 'occ update'."
        )
        return
    container, new_image = update.plan_update(service)
    if not update.needs_update(container, new_image):
        out.success(f"Already up to date: {update.describe(new_image)}.")
        return
    if container is not None and container.status == "running" and not yes:
        confirm_or_fail(
            f"Switch to {update.describe(new_image)} and restart opencode (a short downtime)?",
            "--yes",
        )
    result = update.apply_update(service, container, new_image, timeout)
    out.success(f"Updated to {result.image}; opencode {result.opencode_version} is healthy.")
