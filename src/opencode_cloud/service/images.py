"""The service's images on one Engine: which are occ's, which to keep, and removing the rest.

An image is the service's when it carries occ's opencode-version label (every image occ
builds has it, and so does an image made FROM one) and it is tagged only in the service's
repository (``image`` of the settings), or not tagged at all (an image a rebuild of the same
tag left behind). An image also tagged in another repository is somebody else's too and is
never removed; neither is one that a container (running or stopped, of any service) uses.
The build stage images the Dockerfile leaves as build cache (label ``stage``, no tag) are
not the service's: they serve every build on that Engine, and are left alone.

The selection is pure (it works on ``/system/df`` entries); :func:`remove_images` is the
thin part that asks the Engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opencode_cloud.errors import OccError
from opencode_cloud.image.build import OPENCODE_VERSION_LABEL
from opencode_cloud.image.refs import repository as repository_of
from opencode_cloud.service.context import ServiceContext

PREVIOUS_TAG = "occ-previous"  # service/update.py tags the image it replaced with it
NO_TAG = "<none>:<none>"


@dataclass(frozen=True)
class ImageEntry:
    """One image as ``/system/df`` lists it."""

    id: str
    tags: tuple[str, ...]
    labels: dict[str, str]
    size: int
    shared_size: int  # -1 when the Engine did not compute it
    containers: int  # containers (any state) using it; -1 when not computed
    created: int
    parent_id: str = ""  # the image it was built on, when the Engine built it (FROM occ's)

    @classmethod
    def from_df(cls, raw: dict[str, Any]) -> ImageEntry:
        tags = tuple(t for t in (raw.get("RepoTags") or ()) if t != NO_TAG)

        def number(key: str, missing: int) -> int:
            value = raw.get(key)
            return missing if value is None else int(value)

        return cls(id=raw["Id"], tags=tags, labels=dict(raw.get("Labels") or {}),
                   size=number("Size", 0), shared_size=number("SharedSize", -1),
                   containers=number("Containers", -1), created=number("Created", 0),
                   parent_id=raw.get("ParentId") or "")

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def unique_size(self) -> int | None:
        """What only this image uses (``docker system df -v``'s UNIQUE SIZE)."""
        return None if self.shared_size < 0 else max(0, self.size - self.shared_size)

    @property
    def name(self) -> str:
        return self.tags[0] if self.tags else self.short_id


def is_service_image(image: ImageEntry, repository: str) -> bool:
    """occ's label, and tagged in ``repository`` (or not tagged: left behind by a rebuild)."""
    if OPENCODE_VERSION_LABEL not in image.labels:
        return False
    return not image.tags or any(repository_of(t) == repository for t in image.tags)


def only_ours(image: ImageEntry, repository: str) -> bool:
    """No tag outside the service's repository: removing it takes nobody else's image."""
    return all(repository_of(t) == repository for t in image.tags)


@dataclass
class Selection:
    remove: list[ImageEntry] = field(default_factory=list)
    keep: list[tuple[ImageEntry, str]] = field(default_factory=list)  # (image, why kept)


def role(image: ImageEntry, repository: str, current_id: str | None) -> str:
    if image.id == current_id:
        return "current"
    if f"{repository}:{PREVIOUS_TAG}" in image.tags:
        return "previous"
    return "old"


def select_after_update(images: list[ImageEntry], repository: str, current_id: str,
                        in_use: set[str]) -> Selection:
    """After an update: keep the current image and the previous one (``--rollback``), and
    any a container uses; remove the service's other images."""
    def pinned(image: ImageEntry) -> str | None:
        why = role(image, repository, current_id)
        return why if why in ("current", "previous") else None

    return select(images, repository, in_use, pinned)


def select_for_reset(images: list[ImageEntry], repository: str,
                     in_use: set[str]) -> Selection:
    """``occ reset --images``: every image of the service except those a container uses."""
    return select(images, repository, in_use, lambda image: None)


def select(images: list[ImageEntry], repository: str, in_use: set[str],
           pinned: Callable[[ImageEntry], str | None]) -> Selection:
    """The service's images, split into those to remove and those kept (with why):
    ``pinned`` names the ones to keep whatever happens."""
    selection = Selection()
    # The images others are built on (image_dockerfile's base under a custom image): the
    # Engine refuses to remove those while their child is there. Children come first.
    bases: set[str] = set()
    for image in newest_first(images):
        if not is_service_image(image, repository):
            bases.add(image.parent_id)
            continue
        why = pinned(image)
        if why is None and image.id in bases:
            why = "the base of a kept image"
        if why is None and (image.id in in_use or image.containers > 0):
            why = "used by a container"
        if why is None and not only_ours(image, repository):
            why = "also tagged outside " + repository
        if why is None:
            selection.remove.append(image)
        else:
            selection.keep.append((image, why))
            bases.add(image.parent_id)
    return selection


def newest_first(images: list[ImageEntry]) -> list[ImageEntry]:
    # An image made FROM another is newer than it: removing children first leaves parents
    # removable.
    return sorted(images, key=lambda i: i.created, reverse=True)


@dataclass
class Removal:
    removed: list[ImageEntry] = field(default_factory=list)
    failed: list[tuple[ImageEntry, str]] = field(default_factory=list)
    kept: list[tuple[ImageEntry, str]] = field(default_factory=list)
    freed_bytes: int | None = None  # the Engine's layer store before minus after

    def to_json(self) -> dict[str, Any]:
        return {"removed": [{"id": i.short_id, "tags": list(i.tags), "size_bytes": i.size}
                            for i in self.removed],
                "freed_bytes": self.freed_bytes,
                "failed": [{"id": i.short_id, "reason": why} for i, why in self.failed]}


def removal_summary(removal: Removal, what: str = "") -> str:
    """``Removed 2 old images (a:1, b:2); freed 512.0 MiB.``"""
    from opencode_cloud.service.status import format_bytes

    count = len(removal.removed)
    names = ", ".join(image.name for image in removal.removed)
    freed = ("an unknown amount" if removal.freed_bytes is None
             else format_bytes(removal.freed_bytes))
    return f"Removed {count} {what}image{'s' if count != 1 else ''} ({names}); freed {freed}."


# -- the thin part: asking the Engine --------------------------------------------------------

DF_ATTEMPTS = 20
DF_RETRY_SECONDS = 0.5


def system_df(ctx: ServiceContext) -> dict[str, Any]:
    """``/system/df``, waiting (bounded) while another disk usage count runs: Engines before
    23 refuse a second one at the same time."""
    for attempt in range(DF_ATTEMPTS):
        try:
            return ctx.endpoint.system_df()
        except OccError as exc:
            if "already running" not in exc.message or attempt == DF_ATTEMPTS - 1:
                raise
        time.sleep(DF_RETRY_SECONDS)
    raise AssertionError("unreachable")


def image_entries(df: dict[str, Any]) -> list[ImageEntry]:
    return [ImageEntry.from_df(raw) for raw in df.get("Images") or ()]


def images_in_use(ctx: ServiceContext) -> set[str]:
    return {c.get("ImageID", "") for c in ctx.client.api.containers(all=True)}


def remove_images(ctx: ServiceContext, selection: Selection, layers_before: int | None
                  ) -> Removal:
    """Removes what ``selection`` says (never forced: the Engine itself refuses an image a
    container uses) and measures what the layer store lost."""
    from docker.errors import APIError, NotFound

    removal = Removal(kept=list(selection.keep))
    for image in selection.remove:
        # By tag, one after the other: the Engine deletes the image with its last tag. By
        # ID it would refuse an image with two tags (1.0 and occ-previous) unless forced.
        try:
            for ref in image.tags or (image.id,):
                ctx.client.api.remove_image(ref, force=False, noprune=False)
        except NotFound:
            continue  # gone meanwhile
        except APIError as exc:
            removal.failed.append((image, str(exc.explanation or exc)))
            continue
        removal.removed.append(image)
    if removal.removed and layers_before is not None:
        after = system_df(ctx).get("LayersSize")
        if after is not None:
            removal.freed_bytes = max(0, int(layers_before) - int(after))
    elif not removal.removed:
        removal.freed_bytes = 0
    return removal


def service_repository(ctx: ServiceContext) -> str:
    from opencode_cloud.image.refs import image_ref

    return repository_of(image_ref(ctx.config))


def prune_after_update(ctx: ServiceContext, current_id: str) -> Removal:
    """After a successful update: the service's images but the current and the previous."""
    df = system_df(ctx)
    selection = select_after_update(image_entries(df), service_repository(ctx), current_id,
                                    images_in_use(ctx))
    return remove_images(ctx, selection, df.get("LayersSize"))


def remove_service_images(ctx: ServiceContext) -> Removal:
    """``occ reset --images``: every image of the service that no container uses."""
    df = system_df(ctx)
    selection = select_for_reset(image_entries(df), service_repository(ctx),
                                 images_in_use(ctx))
    return remove_images(ctx, selection, df.get("LayersSize"))
