"""Atomic, locked, private writes of small files (config.json, hosts.json).

Why each step:
- write to a temporary file in the same folder, fsync, then os.replace: a crash at
  any moment leaves either the old or the new file, never half of one;
- an advisory lock (flock on a sibling ``.lock`` file) around every
  read-modify-write: two occ processes never lose each other's changes;
- files 0600 and folders 0700: they may hold host names and settings that are
  nobody else's business.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make sure the folder itself is 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock for ``path`` (on ``path.lock``) inside the block."""
    ensure_private_dir(path.parent)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; the result is 0600 in a 0700 folder."""
    import tempfile  # only writers pay for it; every command reads

    folder = ensure_private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_text(path: Path, change: Callable[[str | None], str]) -> str:
    """Read-modify-write under the lock: ``change(old_text_or_None)`` returns the new text."""
    with locked(path):
        new_text = change(read_text(path))
        atomic_write(path, new_text)
        return new_text
