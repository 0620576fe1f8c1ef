"""``occ backup``: a consistent copy of the service's volumes and login into an archive.

Consistency: the service's container is *paused* (Docker's cgroup freezer) for the copy
and unpaused right after, also when the copy fails. Every process in the sandbox (opencode,
its terminals, Cockpit) is frozen at one instant, so the volumes are copied as of that
instant: opencode's SQLite database is then in the state a sudden power cut would leave,
which SQLite is built to recover from, and nothing changes under the copy. A pause costs
no restart: opencode keeps its memory and open sessions and answers again at once, so it
is unavailable only while the bytes travel. A stopped service is copied as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import IO

from opencode_cloud.errors import OccError
from opencode_cloud.service import volume_copy
from opencode_cloud.service.context import ServiceContext


@dataclass
class BackupOutcome:
    manifest: dict
    paused_seconds: float | None  # None: the service was not running, nothing was paused
    copy_seconds: float
    skipped: list[str]

    @property
    def total_bytes(self) -> int:
        return sum(v["bytes"] for v in self.manifest["volumes"].values())

    @property
    def file_count(self) -> int:
        return sum(v["files"] for v in self.manifest["volumes"].values())


def opencode_version(container) -> str | None:
    from opencode_cloud.image.build import OPENCODE_VERSION_LABEL

    try:
        return (container.image.labels or {}).get(OPENCODE_VERSION_LABEL)
    except Exception:  # noqa: BLE001 (the image may be gone; the version is informative)
        return None


def helper_image(ctx: ServiceContext, container):
    if container is not None:
        return container.attrs["Image"]
    return ctx.ensure_image().id


def backup(ctx: ServiceContext, sink: IO[bytes], source: str) -> BackupOutcome:
    """Write the archive into ``sink``; ``source`` names the target in the manifest."""
    from opencode_cloud.service.credentials import read_credentials
    from opencode_cloud.storage.backup_archive import ArchiveWriter, ChunkReader, header

    roles = volume_copy.existing_roles(ctx)
    if ctx.names.volume("data") not in {ctx.names.volume(r) for r in roles}:
        raise OccError(f"there is nothing to back up {ctx.endpoint.where}: the service's "
                       f"volumes ({ctx.names.volume('data')}, …) do not exist",
                       hint="Check --host and OCC_INSTANCE; 'occ status' shows the service.")
    creds = read_credentials(ctx.client, ctx.names)
    container = ctx.container()
    image = helper_image(ctx, container)
    sizes = volume_copy.volume_sizes(ctx)
    total = sum(max(sizes.get(ctx.names.volume(r), 0), 0) for r in roles) or None
    done = 0

    def count(n: int) -> None:
        nonlocal done
        done += n
        ctx.reporter.progress("Copying the volumes", done, max(total, done) if total else None)

    state = container.status if container is not None else "absent"
    paused_at = None
    with volume_copy.volume_helper(ctx, image, roles, writable=False) as helper, \
            ArchiveWriter(sink, header(source, ctx.names.instance), count) as writer:
        if state == "running":
            ctx.reporter.step("Pausing opencode for a consistent copy")
            container.pause()
            paused_at = time.monotonic()
        started = time.monotonic()
        try:
            for role in roles:
                ctx.reporter.activity(f"Copying the {role} volume")
                with volume_copy.read_volume(ctx, helper, role) as chunks:
                    writer.add_volume(role, ChunkReader(chunks))
        finally:
            paused_seconds = None
            if paused_at is not None:
                resume(ctx, container)
                paused_seconds = time.monotonic() - paused_at
        copy_seconds = time.monotonic() - started
        manifest = writer.finish(
            {"username": creds.username, "password": creds.password} if creds else None,
            {"opencode_version": opencode_version(container) if container else None,
             "service_state": state, "paused_seconds": paused_seconds,
             "volume_names": {r: ctx.names.volume(r) for r in roles}})
    return BackupOutcome(manifest, paused_seconds, copy_seconds, writer.skipped)


def resume(ctx: ServiceContext, container) -> None:
    """Unpause; if the Engine cannot be reached now, say how to resume it by hand."""
    try:
        container.unpause()
    except Exception as exc:  # noqa: BLE001 (the copy's own error matters more)
        ctx.reporter.warn(f"opencode could not be resumed {ctx.endpoint.where} ({exc}); it "
                          "stays paused until 'occ start' (or 'docker unpause "
                          f"{ctx.names.container}')")
