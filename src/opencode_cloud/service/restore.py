"""``occ restore``: put a verified backup's volumes and login on a target and start it.

The archive is checked whole (storage/backup_archive.verify) before this module is even
called. Here: the image is made ready and the target's volumes are looked at while the
service still runs; only then is the service stopped, its container and volumes replaced
with the backup's (the data volume gets the backup's login as its labels, as
credentials.ensure_volumes would), and the service started and waited for.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from opencode_cloud.errors import OccError
from opencode_cloud.service import DEFAULT_START_TIMEOUT, volume_copy
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.lifecycle import StartOutcome
from opencode_cloud.service.names import VOLUME_MOUNTS


@dataclass
class RestorePlan:
    image: object  # the Docker image the service will run
    occupied: list[str]  # volumes on the target that hold data


@dataclass
class RestoreOutcome:
    start: StartOutcome
    copy_seconds: float
    unavailable_seconds: float  # from stopping the old service to the new one healthy


def prepare(ctx: ServiceContext, force: bool) -> RestorePlan:
    """Image ready, and the target checked; refuses volumes with data unless ``force``."""
    image = ctx.ensure_image()
    roles = volume_copy.existing_roles(ctx)
    occupied = []
    if roles:
        ctx.reporter.step("Looking at the volumes there")
        with volume_copy.volume_helper(ctx, image.id, roles, writable=False) as helper:
            occupied = [ctx.names.volume(r) for r in roles
                        if volume_copy.holds_data(ctx, helper, r)]
    if occupied and not force:
        raise OccError(f"the service's volumes {ctx.endpoint.where} hold data: "
                       f"{', '.join(occupied)}",
                       hint="Nothing was changed. To replace them with the backup, add --force "
                       "(back them up first: occ backup -o FILE).")
    return RestorePlan(image, occupied)


def recreate_volumes(ctx: ServiceContext, credentials: dict | None) -> None:
    """Empty volumes for the backup; the data volume carries its login as labels."""
    from docker.errors import NotFound

    from opencode_cloud.engine.labels import label
    from opencode_cloud.service.credentials import (
        PASSWORD_LABEL,
        USERNAME_LABEL,
        rotated_volumes,
    )

    for volume in rotated_volumes(ctx.client, ctx.names):
        volume.remove()
    for name in ctx.names.volumes:
        with contextlib.suppress(NotFound):
            ctx.client.volumes.get(name).remove()
        labels = {label("instance"): ctx.names.instance}
        if name == ctx.names.credentials_volume and credentials is not None:
            labels |= {USERNAME_LABEL: credentials["username"],
                       PASSWORD_LABEL: credentials["password"]}
        ctx.client.volumes.create(name=name, labels=labels)


def restore(ctx: ServiceContext, plan: RestorePlan, path: str, checked,
            timeout: float = DEFAULT_START_TIMEOUT) -> RestoreOutcome:
    """Replace the service's volumes with the verified backup ``checked`` (read from
    ``path``), then start the service and wait until it is healthy."""
    from opencode_cloud.service.lifecycle import remove_container, start
    from opencode_cloud.storage.backup_archive import volume_stream

    total = checked.total_bytes
    done = 0

    def count(n: int) -> None:
        nonlocal done
        done += n
        ctx.reporter.progress("Restoring the volumes", done, max(total, done) or None)

    down_at = time.monotonic()
    container = ctx.container()
    if container is not None:
        ctx.reporter.step("Stopping the service")
        if container.status == "paused":
            container.unpause()
        container.stop(timeout=30)
        remove_container(container)
    recreate_volumes(ctx, checked.credentials)
    copied_at = time.monotonic()
    ctx.reporter.step("Restoring the volumes")
    with volume_copy.volume_helper(ctx, plan.image.id, list(VOLUME_MOUNTS),
                                   writable=True) as helper:
        volume_copy.write_volumes(helper, volume_stream(path, count))
    copy_seconds = time.monotonic() - copied_at
    outcome = start(ctx, timeout, image=plan.image)
    return RestoreOutcome(outcome, copy_seconds, time.monotonic() - down_at)

