"""``occ mount``: host folders in the sandbox. The checks on the target and the pure edits
of the ``mounts`` list; the CLI stores the result (config.json or the host's settings).

Ownership: the sandbox user ``opencoder`` takes the owner (uid and gid) of the first
read-write mount when the container starts (image/entrypoint.sh), so what opencode writes
there belongs to that folder's owner on the host. A folder owned by root gives no uid:
opencoder keeps its own (1000).
"""

from __future__ import annotations

from dataclasses import dataclass

from opencode_cloud.config.mounts import Mount, check_mounts, system_path_refusal
from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.errors import OccError
from opencode_cloud.service.context import ServiceContext


class MountError(OccError):
    """A mount that cannot be added or removed."""


@dataclass(frozen=True)
class CheckedMount:
    mount: Mount
    uid: int
    gid: int


def check_on_target(endpoint: DockerEndpoint, mount: Mount) -> CheckedMount:
    """The folder must exist on the Engine's machine, be a directory, and (with every
    symlink resolved) be no system folder; else a MountError, and nothing changed."""
    where = endpoint.where
    refusal = system_path_refusal(mount.host_path, endpoint.docker_socket)
    if refusal:
        raise MountError(refusal, hint="Mount a project folder, e.g. /home/me/project.")
    if endpoint.inspect_path is None:
        raise MountError(f"occ cannot look at folders {where} (Docker at {endpoint.base_url})",
                         hint="Mounts work with a local Docker socket or a host of hosts.json.")
    found = endpoint.inspect_path(mount.host_path, endpoint.docker_socket)
    if found.kind == "missing":
        raise MountError(f"{mount.host_path} does not exist {where}",
                         hint="Create the folder first, or check the path.")
    if found.kind != "directory":
        raise MountError(f"{mount.host_path} {where} is not a directory",
                         hint="Mount a folder; a single file cannot be mounted with occ.")
    real = found.real_path or mount.host_path
    refusal = system_path_refusal(real, endpoint.docker_socket)
    if found.is_socket_folder:
        refusal = (f"{mount.host_path} {where} holds the Docker socket "
                   f"({endpoint.docker_socket}): mounting it would give the sandbox root "
                   "on the host")
    elif real != mount.host_path and refusal:
        refusal = f"{mount.host_path} leads to {real}: {refusal}"
    else:
        refusal = None
    if refusal:
        raise MountError(refusal, hint="Mount a project folder, e.g. /home/me/project.")
    return CheckedMount(mount, found.uid or 0, found.gid or 0)


def verify_mounts(ctx: ServiceContext) -> None:
    """Before a start changes anything: every configured folder is still there (and still
    no system folder). Else Docker would refuse only after the old container was gone."""
    if ctx.endpoint.inspect_path is None:
        return  # an Engine occ cannot look behind (DOCKER_HOST=tcp://...): Docker checks
    for mount in ctx.config.mount_list:
        try:
            check_on_target(ctx.endpoint, mount)
        except MountError as exc:
            flag = f" --host {ctx.endpoint.host}" if ctx.endpoint.host else ""
            raise MountError(f"cannot mount {mount.host_path}: {exc.message}",
                             hint=f"Create the folder again, or stop mounting it: occ mount "
                             f"remove {mount.host_path}{flag}") from None


def with_mount(entries: list[str], mount: Mount) -> list[str]:
    """``entries`` with ``mount`` added; a folder or place already used is a MountError."""
    for existing in check_mounts(entries):
        if existing.host_path == mount.host_path:
            raise MountError(f"{mount.host_path} is already mounted (at "
                             f"{existing.container_path})",
                             hint=f"Remove it first: occ mount remove {mount.host_path}")
    new = [*entries, str(mount)]
    try:
        check_mounts(new)
    except ValueError as exc:
        raise MountError(str(exc), hint="Give another place: HOST_PATH:CONTAINER_PATH") from None
    return new


def without_mount(entries: list[str], host_path: str) -> list[str]:
    """``entries`` without the mount of ``host_path`` (a trailing '/' does not matter)."""
    wanted = host_path.rstrip("/") or "/"
    kept = [e for e in entries if e.split(":")[0] != wanted]
    if len(kept) == len(entries):
        mounted = ", ".join(e.split(":")[0] for e in entries) or "none"
        raise MountError(f"{host_path} is not mounted", hint=f"Mounted folders: {mounted}.")
    return kept


def owner_mount(mounts: list[Mount]) -> Mount | None:
    """The mount whose owner opencoder takes: the first read-write one."""
    return next((m for m in mounts if not m.read_only), None)
