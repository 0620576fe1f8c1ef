"""The connection of a started exec, read without losing its first bytes.

docker-py's ``exec_start(socket=True)`` (and ``exec_run``, built on it) reads the raw socket
under the HTTP response. The response's buffered reader has by then read past the upgrade
answer's headers, and a quick command's whole output often arrives in that same read: it
sits in the buffer, the raw socket never shows it, and the command seems to have printed
nothing (docker/docker-py#3332). Over an SSH-forwarded socket this happens often enough
to make ``cat FILE`` print nothing now and then. :class:`ExecStream` takes those bytes out
of the buffer first, then reads the socket.

The stream is Docker's: with a terminal the command's raw bytes; without one, frames of
an 8-byte header (stream 1 or 2, three zero bytes, a big-endian length) and the data.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator, Sequence
from typing import Any

HEADER = struct.Struct(">BxxxL")
STDOUT, STDERR = 1, 2
CHUNK = 65536


def buffered_bytes(raw: Any, sock: socket.socket) -> bytes:
    """What the HTTP layer read past the headers of the exec's upgrade answer."""
    try:
        reader = raw._response.raw._fp.fp
    except AttributeError:  # not docker-py's usual objects: nothing of ours was buffered
        return b""
    if reader is None:
        return b""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # the buffer's content, or at most what is already here
    try:
        return reader.read1(CHUNK) or b""
    except (BlockingIOError, OSError):
        return b""
    finally:
        sock.settimeout(timeout)


class ExecStream:
    """The output side (and the socket, for input) of an exec that ``exec_start`` began."""

    def __init__(self, raw: Any, tty: bool) -> None:
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self.tty = tty
        self._pending = buffered_bytes(raw, self.sock)

    def _recv(self, size: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self.sock.recv(size)

    def _exactly(self, size: int) -> bytes | None:
        """``size`` bytes; None when the stream ends first."""
        parts, missing = [], size
        while missing:
            data = self._recv(min(missing, CHUNK))
            if not data:
                return None
            parts.append(data)
            missing -= len(data)
        return b"".join(parts)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(stream, bytes) until the command's output ends; stream 1 or 2."""
        if self.tty:
            while data := self._recv(CHUNK):
                yield STDOUT, data
            return
        while (header := self._exactly(HEADER.size)) is not None:
            stream, size = HEADER.unpack(header)
            data = self._exactly(size) if size else b""
            if data is None:
                return
            if data:
                yield (STDERR if stream == STDERR else STDOUT), data

    def close(self) -> None:
        self.sock.close()


def open_exec(api: Any, exec_id: str, tty: bool = False) -> ExecStream:
    return ExecStream(api.exec_start(exec_id, tty=tty, socket=True), tty)


def run_collected(api: Any, container_id: str, argv: Sequence[str],
                  user: str = "") -> tuple[int | None, bytes]:
    """An exec without input: (exit code, stdout and stderr together), as ``exec_run``
    gives, in the same three round trips, without its lost output."""
    exec_id = api.exec_create(container_id, list(argv), user=user)["Id"]
    stream = open_exec(api, exec_id)
    try:
        output = b"".join(data for _stream, data in stream.frames())
    finally:
        stream.close()
    return api.exec_inspect(exec_id).get("ExitCode"), output
