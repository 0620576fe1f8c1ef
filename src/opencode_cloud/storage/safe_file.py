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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from opencode_cloud import report
from opencode_cloud.errors import OccError

FILE_MODE = 0o600
DIR_MODE = 0o700
LOCK_TIMEOUT = 60.0  # seconds another occ may hold a file before we give up
LOCK_NOTICE_AFTER = 2.0  # seconds of waiting before saying whom we wait for
T = TypeVar("T")


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make sure the folder itself is 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


class LockTimeout(OccError):
    """Another occ process held a file for longer than we wait."""


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return f"pid {text}"
    return "pid unknown"


@contextlib.contextmanager
def lock_file(lock_path: Path, *, what: Path | None = None,
              timeout: float | None = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` inside the block.

    The holder's pid is written into the lock file, so that a waiting occ can say whom it
    waits for ("waiting for another occ (pid N) to finish with FILE", after 2 s) and, after
    ``timeout`` seconds (None: no limit), fail with an error naming it.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                name = what or lock_path
                notice = report.lock_wait_notice
                if not told and waited >= LOCK_NOTICE_AFTER and notice is not None:
                    notice(f"waiting for another occ ({_holder(fd)}) to finish with {name}")
                    told = True
                if timeout is not None and waited >= timeout:
                    raise LockTimeout(
                        f"another occ ({_holder(fd)}) has held {name} for over {timeout:.0f} s",
                        hint="Let it finish, or end it if it hangs, then run the command again.",
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock of ``path`` (on ``path.lock`` beside it) inside the block."""
    ensure_private_dir(path.parent)
    with lock_file(path.with_name(path.name + ".lock"), what=path):
        yield


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


def update_document(path: Path, parse: Callable[[str], T], empty: Callable[[], T],
                    render: Callable[[T], str], change: Callable[[T], T]) -> T:
    """The locked read-modify-write of a validated document (config.json, hosts.json):
    parse the current text (``empty()`` when there is no file), apply ``change``, write
    ``render`` of the result. Nothing is written when parsing or ``change`` raises."""
    result: list[T] = []

    def transform(old_text: str | None) -> str:
        result.append(change(empty() if old_text is None else parse(old_text)))
        return render(result[0])

    update_text(path, transform)
    return result[0]
