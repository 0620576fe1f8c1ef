"""Writing a backup file: checked before any work starts, never half there.

The archive is written to a hidden temporary file beside the target (0600: it holds the
login and opencode's provider keys) and renamed into place only when it is complete, so
an interrupted or failed backup (a full disk, Ctrl-C, a dropped connection) leaves no
partial file, and an existing file replaced with ``--force`` stays whole until then.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from opencode_cloud.errors import OccError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def check_output(path: Path, force: bool) -> None:
    if path.is_dir():
        raise OccError(f"{path} is a folder", hint="Give a file name, e.g. -o backup.tar.zst.")
    if path.exists() and not force:
        raise OccError(f"{path} exists already",
                       hint="Choose another name, or add --force to replace it.")
    folder = path.parent
    if not folder.is_dir():
        raise OccError(f"the folder {folder} does not exist",
                       hint="Create it first, or choose another path with -o.")


class _WriteFailed(Exception):
    def __init__(self, error: OSError) -> None:
        self.error = error


class _Sink:
    """The file, with write errors marked as this file's (not, say, a socket's)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        if self.handle.closed:  # a compressor flushing as it is collected after a failure
            return len(data)
        try:
            return self.handle.write(data)
        except OSError as exc:
            raise _WriteFailed(exc) from None

    def flush(self) -> None:
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
        except OSError as exc:
            raise _WriteFailed(exc) from None


@contextlib.contextmanager
def output_file(path: Path, force: bool) -> Iterator[IO[bytes]]:
    """A private temporary file for the archive; renamed to ``path`` when the block ends
    without an error, removed otherwise. Write errors become OccErrors (a full disk is
    said so)."""
    check_output(path, force)
    partial = path.parent / f".{path.name}.partial-{os.getpid()}"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise OccError(f"cannot write in {path.parent}: {exc.strerror}",
                       hint="Choose a folder you may write to, with -o.") from None
    handle = os.fdopen(fd, "wb")
    sink = _Sink(handle)
    try:
        try:
            yield sink  # type: ignore[misc]
            sink.flush()
        finally:
            with contextlib.suppress(OSError):  # a full disk fails the close's flush too
                handle.close()
        if path.exists() and not force:  # appeared while we worked: never overwrite it
            raise OccError(f"{path} appeared while the backup ran",
                           hint="Choose another name, or add --force to replace it.")
        try:
            os.replace(partial, path)
        except OSError as exc:
            raise _WriteFailed(exc) from None
    except _WriteFailed as failed:
        exc = failed.error
        with contextlib.suppress(OSError):
            partial.unlink()
        if exc.errno in FULL:
            raise OccError(f"the disk filled up while writing {path}; the partial file was "
                           "removed", hint="Free some space (or choose another disk with "
                           "-o), then run the backup again.") from None
        raise OccError(f"cannot write {path}: {exc.strerror or exc}",
                       hint="Check the folder's free space and permissions.") from None
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
