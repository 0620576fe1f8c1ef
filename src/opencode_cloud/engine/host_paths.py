"""What a folder is on the machine that runs the Engine: for ``occ mount add``.

Docker bind-mounts paths of the Engine's machine, so a mount is checked there: on this
machine with ``os``, on a remote host with one shell command over its SSH connection
(built here, purely, and unit-tested).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class HostPath:
    """``kind``: "directory", "other" (a file, a socket...) or "missing"; for a directory
    its owner and the path with every symlink resolved."""

    path: str
    kind: str
    uid: int | None = None
    gid: int | None = None
    real_path: str | None = None


def host_path_command(path: str) -> str:
    """A POSIX shell command whose output :func:`parse_host_path` reads."""
    p = shlex.quote(path)
    return (f"if [ -d {p} ]; then echo directory; stat -L -c '%u %g' -- {p} "
            f"&& realpath -e -- {p}; elif [ -e {p} ] || [ -L {p} ]; then echo other; "
            "else echo missing; fi")


def parse_host_path(path: str, output: str) -> HostPath:
    lines = output.splitlines()
    kind = lines[0].strip() if lines else ""
    if kind == "directory" and len(lines) >= 3:
        uid, _, gid = lines[1].strip().partition(" ")
        if uid.isdigit() and gid.isdigit():
            return HostPath(path, kind, int(uid), int(gid), lines[2])
    if kind in ("other", "missing"):
        return HostPath(path, kind)
    raise ValueError(f"unexpected answer about {path}: {output[:200]!r}")


def local_host_path(path: str) -> HostPath:
    """The same facts for a folder of this machine."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return HostPath(path, "other" if os.path.islink(path) else "missing")
    except OSError:
        return HostPath(path, "other")
    import stat

    if not stat.S_ISDIR(info.st_mode):
        return HostPath(path, "other")
    return HostPath(path, "directory", info.st_uid, info.st_gid, os.path.realpath(path))
