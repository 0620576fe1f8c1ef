"""What a folder is on the machine that runs the Engine: for ``occ mount add``.

Docker bind-mounts paths of the Engine's machine, so a mount is checked there: on this
machine with ``os``, on a remote host with one shell command over its SSH connection
(built here, purely, and unit-tested).
"""

from __future__ import annotations

import os
import posixpath
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class HostPath:
    """``kind``: "directory", "other" (a file, a socket...) or "missing"; for a directory
    its owner, the path with every symlink resolved, and whether it is the folder of the
    Docker socket under another name (a bind mount or a link to it)."""

    path: str
    kind: str
    uid: int | None = None
    gid: int | None = None
    real_path: str | None = None
    is_socket_folder: bool = False


def host_path_command(path: str, docker_socket: str) -> str:
    """A POSIX shell command whose output :func:`parse_host_path` reads (``pwd -P``
    resolves the links: realpath's options differ between coreutils and BusyBox)."""
    p = shlex.quote(path)
    sockets = shlex.quote(posixpath.dirname(docker_socket) or "/")
    return (f"if [ -d {p} ]; then echo directory; stat -L -c '%u %g %d:%i' -- {p} "
            f"&& (cd -- {p} && pwd -P) && {{ stat -L -c '%d:%i' -- {sockets} 2>/dev/null "
            f"|| echo none; }}; elif [ -e {p} ] || [ -L {p} ]; then echo other; "
            "else echo missing; fi")


def parse_host_path(path: str, output: str) -> HostPath:
    lines = output.splitlines()
    kind = lines[0].strip() if lines else ""
    if kind == "directory" and len(lines) >= 4:
        fields = lines[1].split()
        if len(fields) == 3 and fields[0].isdigit() and fields[1].isdigit():
            return HostPath(path, kind, int(fields[0]), int(fields[1]), lines[2],
                            fields[2] == lines[3].strip())
    if kind in ("other", "missing"):
        return HostPath(path, kind)
    raise ValueError(f"unexpected answer about {path}: {output[:200]!r}")


def local_host_path(path: str, docker_socket: str) -> HostPath:
    """The same facts for a folder of this machine."""
    import stat

    try:
        info = os.stat(path)
    except FileNotFoundError:
        return HostPath(path, "other" if os.path.islink(path) else "missing")
    except OSError:
        return HostPath(path, "other")
    if not stat.S_ISDIR(info.st_mode):
        return HostPath(path, "other")
    try:
        sockets = os.stat(posixpath.dirname(docker_socket) or "/")
        same = (sockets.st_dev, sockets.st_ino) == (info.st_dev, info.st_ino)
    except OSError:
        same = False
    return HostPath(path, "directory", info.st_uid, info.st_gid, os.path.realpath(path), same)
