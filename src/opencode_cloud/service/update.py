"""Move the service to the image for the configured opencode version, or back again.

Before switching, the running image is tagged ``<repository>:occ-previous`` so that a
failed update rolls back automatically and ``occ update --rollback`` can go back on request.
Volumes and credentials are untouched: only the container is recreated.
"""

from __future__ import annotations

from dataclasses import dataclass

from opencode_cloud.errors import OccError
from opencode_cloud.image.build import OPENCODE_VERSION_LABEL, find_image, image_ref
from opencode_cloud.image.refs import repository
from opencode_cloud.service import switch
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.health import NotHealthy
from opencode_cloud.service.images import PREVIOUS_TAG, Removal
from opencode_cloud.service.lifecycle import StartOutcome, is_rolled_back, start


class UpdateRolledBack(OccError):
    """The new image did not become healthy; the service runs on the old one again."""


@dataclass
class UpdateOutcome:
    action: str  # "up-to-date" | "updated" | "rolled-back"
    image: str
    opencode_version: str | None
    start: StartOutcome | None = None
    pruned: Removal | None = None  # old images removed after a successful update

    @property
    def summary(self) -> str:
        version = f" (opencode {self.opencode_version})" if self.opencode_version else ""
        return {"up-to-date": "already up to date: ", "updated": "updated to ",
                "rolled-back": "rolled back to "}[self.action] + self.image + version


def previous_ref(ctx: ServiceContext) -> str:
    return f"{repository(image_ref(ctx.config))}:{PREVIOUS_TAG}"


def describe(image) -> str:
    version = (image.labels or {}).get(OPENCODE_VERSION_LABEL)
    name = image.tags[0] if image.tags else image.short_id
    return f"{name} (opencode {version})" if version else name


def plan_update(ctx: ServiceContext):
    """Make the target image available; returns (current container, new image)."""
    switch.recover(ctx)  # an update or start cut off earlier, from any machine
    container = ctx.container()
    new_image = ctx.ensure_image(refresh=True)
    return container, new_image


def needs_update(container, new_image) -> bool:
    return container is None or container.image.id != new_image.id or is_rolled_back(container)


def apply_update(ctx: ServiceContext, container, new_image, timeout: float) -> UpdateOutcome:
    old_image = container.image if container is not None else None
    was_running = container is not None and container.status == "running"
    with switch.operation(ctx, "update", was_running):
        ctx.reporter.checkpoint(switch.IMAGE_READY)
        if old_image is not None and old_image.id != new_image.id:
            old_image.tag(previous_ref(ctx))
        try:
            outcome = start(ctx, timeout, image=new_image)
        except NotHealthy as failure:
            if old_image is None or old_image.id == new_image.id:
                raise
            ctx.reporter.warn(f"the new image did not become healthy: {failure.message}")
            ctx.reporter.info(f"Rolling back to {describe(old_image)}...")
            start(ctx, timeout, image=old_image, rolled_back=True)
            raise UpdateRolledBack(
                f"update failed; rolled back to {describe(old_image)}, which is healthy again",
                hint=failure.hint,
            ) from None
    return UpdateOutcome("updated", describe(new_image), outcome.health.version, outcome,
                         prune_old_images(ctx, new_image.id))


def prune_old_images(ctx: ServiceContext, current_id: str) -> Removal | None:
    """Removes the service's images but the current and the previous one, and says how much
    that freed. A failure here is a warning: the update itself has succeeded."""
    from opencode_cloud.service.images import prune_after_update, removal_summary

    try:
        removal = prune_after_update(ctx, current_id)
    except OccError as exc:
        ctx.reporter.warn(f"old images were not removed: {exc.message}")
        return None
    for image, reason in removal.failed:
        ctx.reporter.warn(f"could not remove the old image {image.name}: {reason}")
    if removal.removed:
        ctx.reporter.info(removal_summary(removal, "old "))
    else:
        ctx.reporter.detail("No old images to remove (the previous one is kept for "
                            "'occ update --rollback').")
    return removal


def rollback(ctx: ServiceContext, timeout: float) -> UpdateOutcome:
    switch.recover(ctx)
    previous = find_image(ctx.client, previous_ref(ctx))
    if previous is None:
        raise OccError(
            "there is no previous image to roll back to",
            hint="A rollback becomes possible after an 'occ update' changed images.",
        )
    container = ctx.container()
    current = container.image if container is not None else None
    if current is not None and current.id == previous.id:
        raise OccError(f"the service already runs the previous image {describe(previous)}")
    outcome = start(ctx, timeout, image=previous, rolled_back=True)
    if current is not None:
        current.tag(previous_ref(ctx))  # a second rollback goes forward again
    return UpdateOutcome("rolled-back", describe(previous), outcome.health.version, outcome)
