"""Bind mounts of host folders into the sandbox: the ``mounts`` setting, pure and checked.

An entry of ``mounts`` is ``HOST_PATH:CONTAINER_PATH`` or ``HOST_PATH:CONTAINER_PATH:ro``
(the canonical form occ writes). On the command line the container path may be left out
(``~/workspace/<basename>``) and may start with ``~/`` (opencoder's home). Paths hold no
``:`` (it separates the parts, as in ``docker run -v``) and no control characters.

Checks here need no host: the form, system folders, where a folder may appear in the
sandbox, duplicates. That the folder exists on the host is checked there, by ``occ mount
add`` (service/mounts.py).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

SANDBOX_HOME = "/home/opencoder"
SANDBOX_WORKSPACE = f"{SANDBOX_HOME}/workspace"

# Never mounted, nor anything inside them: the system itself and the Docker Engine's
# state (a writable Docker socket or /var/lib/docker is root on the host).
SYSTEM_TREES = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32",
    "/lib64", "/libx32", "/run", "/var/run", "/var/lib/docker", "/var/lib/containerd",
    "/var/lib/dpkg", "/var/lib/apt", "/var/log", "/snap",
)  # fmt: skip
# Refused as a whole (their subfolders are fine): every user's home, root's home.
SYSTEM_FOLDERS = ("/", "/home", "/var", "/var/lib", "/var/tmp", "/root", "/tmp", "/opt", "/srv",
                  "/mnt")
# Where a folder may appear in the sandbox: below these (not at them).
CONTAINER_ROOTS = (SANDBOX_HOME, "/mnt", "/srv")
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False

    def __str__(self) -> str:
        """The canonical entry of the ``mounts`` setting."""
        return f"{self.host_path}:{self.container_path}{':ro' if self.read_only else ''}"

    def to_dict(self) -> dict[str, object]:
        return {"host_path": self.host_path, "container_path": self.container_path,
                "read_only": self.read_only}


def parse_mount(text: str) -> Mount:
    """``HOST_PATH[:CONTAINER_PATH][:ro|:rw]`` -> Mount; ValueError says what is wrong."""
    _check_characters(text, "the mount")
    parts = text.split(":")
    read_only = False
    if len(parts) > 1 and parts[-1] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if len(parts) > 2:
        raise ValueError(f"{text!r} has too many ':' (paths may not hold ':'); "
                         "the form is HOST_PATH[:CONTAINER_PATH][:ro]")
    host = check_host_path(parts[0])
    if len(parts) == 2:
        container = check_container_path(parts[1])
    else:
        name = posixpath.basename(host)
        container = check_container_path(f"{SANDBOX_WORKSPACE}/{name}")
    return Mount(host, container, read_only)


def parse_entry(text: str) -> Mount:
    """One stored entry of ``mounts``: the container path is always written out."""
    mount = parse_mount(text)
    if text.split(":")[1:2] in ([], ["ro"], ["rw"]):
        raise ValueError(f"entry {text!r} must be HOST_PATH:CONTAINER_PATH[:ro]")
    return mount


def check_mounts(entries: list[str]) -> list[Mount]:
    """Every entry of ``mounts`` checked, and no folder or place used twice."""
    mounts = [parse_entry(entry) for entry in entries]
    for i, mount in enumerate(mounts):
        for other in mounts[:i]:
            if other.host_path == mount.host_path:
                raise ValueError(f"{mount.host_path} is mounted twice")
            if _within(mount.container_path, other.container_path) or _within(
                    other.container_path, mount.container_path):
                raise ValueError(f"{mount.container_path} and {other.container_path} "
                                 "overlap in the sandbox: give each folder its own place")
    return mounts


def check_host_path(path: str, docker_socket: str = DEFAULT_DOCKER_SOCKET) -> str:
    """The normalised absolute host path, or ValueError if it is relative or a system
    folder (also the Docker socket's folder and every folder holding it)."""
    _check_characters(path, "the host path")
    path = _absolute(path, "the host path", "e.g. /home/me/project")
    refusal = system_path_refusal(path, docker_socket)
    if refusal:
        raise ValueError(refusal)
    return path


def system_path_refusal(path: str, docker_socket: str = DEFAULT_DOCKER_SOCKET) -> str | None:
    """Why ``path`` (absolute, normalised) may not be mounted, None when it may."""
    socket_dir = posixpath.dirname(docker_socket) or "/"
    if path in SYSTEM_FOLDERS or any(_within(path, tree) for tree in SYSTEM_TREES):
        return f"{path} is a system folder: mount a folder of your own instead"
    if _within(path, socket_dir) or _within(socket_dir, path):
        return (f"{path} holds the Docker socket ({docker_socket}): mounting it would give "
                "the sandbox root on the host")
    return None


def check_container_path(path: str) -> str:
    """The normalised place in the sandbox (``~/`` is opencoder's home), or ValueError."""
    _check_characters(path, "the container path")
    if path == "~" or path.startswith("~/"):
        path = SANDBOX_HOME + path[1:]
    path = _absolute(path, "the container path", "e.g. ~/workspace/project")
    below = [root for root in CONTAINER_ROOTS if path.startswith(root + "/")]
    first = path[len(SANDBOX_HOME) + 1:].split("/")[0] if below == [SANDBOX_HOME] else ""
    if not below or first.startswith(".") or path == SANDBOX_WORKSPACE:
        raise ValueError(
            f"{path} is not a place for a mounted folder: use a folder below "
            f"{SANDBOX_WORKSPACE} (the default), {SANDBOX_HOME} (not its dot-folders, "
            "where opencode keeps its state), /mnt or /srv")
    return path


def _absolute(path: str, what: str, example: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{what} {path!r} must be absolute ({example})")
    parts = path.split("/")
    if ".." in parts or "." in parts:
        raise ValueError(f"{what} {path!r} must not hold '.' or '..' parts")
    return posixpath.normpath(path).replace("//", "/")


def _check_characters(text: str, what: str) -> None:
    if not text:
        raise ValueError(f"{what} is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 or "\ud800" <= ch <= "\udfff" for ch in text):
        raise ValueError(f"{what} {text!r} holds a newline or another control character")
    if what != "the mount" and ":" in text:
        raise ValueError(f"{what} {text!r} holds ':', which separates the parts of a mount")


def _within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")
