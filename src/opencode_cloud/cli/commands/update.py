"""``occ update``: move to the image of the configured opencode version, or roll back."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import (
    fleet_hosts,
    fleet_options,
    rollout,
    rollout_options,
    run_on_hosts,
    service_work,
)
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
@rollout_options
@fleet_options
@global_options
def update_command(yes: bool, rollback: bool, timeout: float, batch: int | None,
                   no_canary: bool) -> None:
    """Update opencode: rebuild or pull the image and recreate the container.

    Volumes and credentials are kept. If the new container does not become healthy, the
    previous image is restored automatically.

    With --group/--all it rolls: one host first (the canary), then the rest in batches of
    --batch. If a host's update fails (it rolls back by itself), the rollout halts and the
    hosts not yet touched keep their version.

    \b
    Examples:
      occ config set opencode_version 1.18.33 && occ update --yes
      occ update --rollback --yes
      occ update --group production --yes --batch 5
    """
    from opencode_cloud.service import update

    hosts = fleet_hosts()
    if hosts is not None:
        if not yes:
            what = "Roll back" if rollback else "Update"
            confirm_or_fail(f"{what} opencode on {len(hosts)} hosts, one after another "
                            "(a short downtime on each)?", "--yes")
        run_on_hosts(hosts, service_work(lambda service: update_one(service, rollback,
                                                                    timeout)),
                     summary=lambda outcome: outcome.summary,
                     to_json=lambda outcome: {"action": outcome.action, "image": outcome.image,
                                              "opencode_version": outcome.opencode_version,
                                              "pruned": outcome.pruned and
                                              outcome.pruned.to_json()},
                     rollout=rollout(batch, no_canary))
        return
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


def update_one(service, rollback: bool, timeout: float):
    """One host's part of a rolling update (no questions: asked once for the fleet)."""
    from opencode_cloud.service import update

    if rollback:
        return update.rollback(service, timeout)
    container, new_image = update.plan_update(service)
    if not update.needs_update(container, new_image):
        return update.UpdateOutcome("up-to-date", update.describe(new_image),
                                    (new_image.labels or {}).get(update.OPENCODE_VERSION_LABEL))
    return update.apply_update(service, container, new_image, timeout)
