"""One read-only request to a Docker Engine's unix socket, without the Docker SDK.

The Docker SDK costs ~70 ms to import (requests, urllib3, …) and even http.client ~12 ms
(it parses headers with the email package). The commands whose speed people feel,
``occ status`` and ``occ host test``, need one ``GET`` each, so they send a plain HTTP/1.0
request: the Engine then closes the connection after the body, with no chunked encoding,
so reading to the end gives the whole answer. Everything else goes through the SDK.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_ANSWER = 16 * 1024 * 1024


@dataclass(frozen=True)
class EngineAnswer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class BadAnswer(OSError):
    """What came back is not an HTTP response."""


def parse_answer(data: bytes) -> EngineAnswer:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/"):
        raise BadAnswer("the Engine's answer is not an HTTP response")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise BadAnswer(f"bad status line {status_line!r}") from None
    return EngineAnswer(status, headers, body)


def engine_get(socket_path: str, path: str, timeout: float = 10.0) -> EngineAnswer:
    """``GET path`` on the Engine at ``socket_path``. Raises OSError when nothing (or
    nothing sensible) answers; any HTTP status is returned."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks, size = [], 0
        while size < MAX_ANSWER:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return parse_answer(b"".join(chunks))


def unix_socket_path(base_url: str | None) -> str | None:
    """The socket path of a ``unix://`` base URL, else None."""
    if base_url and base_url.startswith("unix://"):
        return base_url.removeprefix("unix://")
    return None


def read_chunked(reader) -> Iterator[bytes]:
    """The body of an HTTP/1.1 chunked answer, piece by piece. Its last, empty chunk is
    what proves the body whole: an answer cut anywhere raises BadAnswer."""
    while True:
        line = reader.readline(1024)
        if not line.endswith(b"\r\n"):
            raise BadAnswer("the Engine's answer ended early")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise BadAnswer(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            while reader.readline(1024) not in (b"\r\n", b""):  # trailers, if any
                pass
            return
        data = reader.read(size)
        if len(data) != size or reader.read(2) != b"\r\n":
            raise BadAnswer("the Engine's answer ended early")
        yield data


@contextlib.contextmanager
def engine_stream(socket_path: str, path: str, timeout: float = 120.0
                  ) -> Iterator[tuple[int, Iterator[bytes]]]:
    """``GET path`` whose body is streamed: (status, body pieces). For large answers
    (a volume's tar): the Docker SDK decodes a chunked body at about 40 MB/s, a buffered
    socket file several times faster. Raises OSError when nothing answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
                     .encode())
        with sock.makefile("rb", buffering=1024 * 1024) as reader:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline(8192)
                if not line:
                    raise BadAnswer("the Engine closed the connection before answering")
                head += line
                if len(head) > 65536:
                    raise BadAnswer("the Engine's answer has too long a header")
            answer = parse_answer(head)
            chunked = "chunked" in answer.headers.get("transfer-encoding", "").lower()
            if chunked:
                body = read_chunked(reader)
            else:
                length = answer.headers.get("content-length")
                body = iter([reader.read(int(length)) if length else reader.read(MAX_ANSWER)])
            yield answer.status, body
    finally:
        sock.close()
