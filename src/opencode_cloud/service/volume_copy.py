"""Copying the service's volumes out of and into a Docker Engine, through its API only.

A helper container is created (never started: it runs nothing and needs no network) with
the volumes mounted at ``/occ-volumes/<role>``; Docker's archive API then streams each
mount point as tar (``GET /containers/ID/archive``) or extracts a tar stream into them
(``PUT``). The bytes travel over the endpoint's own connection, which for a remote host
is the SSH-forwarded Docker socket: no port is opened, no shell runs on the host, and
owners, modes and links come back as they were.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from opencode_cloud.engine.labels import label
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.names import VOLUME_MOUNTS, ServiceNames

MOUNT_ROOT = "/occ-volumes"
HELPER_LABEL = label("volume-helper")


def helper_kwargs(names: ServiceNames, image_id: str, roles: list[str], *,
                  writable: bool) -> dict[str, Any]:
    """``containers.create`` arguments of the helper for ``roles`` (pure; unit-tested)."""
    mode = "rw" if writable else "ro"
    return {
        "image": image_id,
        "name": f"{names.instance}-volumes-{uuid.uuid4().hex[:8]}",
        "entrypoint": ["/bin/true"],  # never started; a start would do nothing
        "command": [],
        "network_disabled": True,
        "labels": {label("instance"): names.instance, HELPER_LABEL: "1"},
        "volumes": {names.volume(role): {"bind": f"{MOUNT_ROOT}/{role}", "mode": mode}
                    for role in roles},
    }


def remove_stale_helpers(ctx: ServiceContext) -> None:
    """Helpers left by an interrupted backup or restore of this instance."""
    from docker.errors import NotFound

    for container in ctx.client.containers.list(all=True, filters={"label": [
            HELPER_LABEL, f"{label('instance')}={ctx.names.instance}"]}):
        with contextlib.suppress(NotFound):
            container.remove(force=True)


@contextlib.contextmanager
def volume_helper(ctx: ServiceContext, image_id: str, roles: list[str], *,
                  writable: bool) -> Iterator[Any]:
    remove_stale_helpers(ctx)
    helper = ctx.client.containers.create(**helper_kwargs(ctx.names, image_id, roles,
                                                          writable=writable))
    try:
        yield helper
    finally:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            helper.remove(force=True)


def existing_roles(ctx: ServiceContext) -> list[str]:
    """The roles whose volume exists on the Engine, in the usual order."""
    have = {v.name for v in ctx.client.volumes.list(
        filters={"name": ctx.names.instance})}
    return [role for role in VOLUME_MOUNTS if ctx.names.volume(role) in have]


def read_volume(ctx: ServiceContext, helper, role: str):
    """Docker's tar of one mounted volume, entries named ``<role>/…``: a context manager
    yielding its pieces (see DockerEndpoint.container_archive)."""
    return ctx.endpoint.container_archive(helper.id, f"{MOUNT_ROOT}/{role}")


def holds_data(ctx: ServiceContext, helper, role: str) -> bool:
    """Does the volume hold anything at all? Reads only its first entries."""
    import tarfile

    from opencode_cloud.storage.backup_archive import ChunkReader

    with read_volume(ctx, helper, role) as chunks, \
            tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tar:
        for count, _member in enumerate(tar):
            if count >= 1:  # the first entry is the mount point itself
                return True
    return False


def write_volumes(helper, stream: Iterator[bytes]) -> None:
    """Extract a tar stream with entries ``<role>/…`` into the mounted volumes."""
    from opencode_cloud.errors import OccError

    if not helper.put_archive(MOUNT_ROOT, stream):
        raise OccError("Docker did not accept the volumes' contents")


def volume_sizes(ctx: ServiceContext) -> dict[str, int]:
    """Volume name -> bytes used, from the Engine's disk usage; {} when it cannot say."""
    try:
        usage = ctx.client.df()
    except Exception:  # noqa: BLE001 (only the progress bar's total depends on it)
        return {}
    return {v.get("Name"): (v.get("UsageData") or {}).get("Size", -1)
            for v in usage.get("Volumes") or []}
