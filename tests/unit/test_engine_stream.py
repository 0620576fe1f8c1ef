"""engine/http.py's streamed GET (a volume's tar): chunked bodies decoded whole, and an
answer cut before its last chunk is an error, never a short body taken as complete."""

from __future__ import annotations

import io
import socket
import threading
from pathlib import Path

import pytest

from opencode_cloud.engine.http import BadAnswer, engine_stream, read_chunked

pytestmark = pytest.mark.unit


def chunked(*pieces: bytes, end: bool = True) -> bytes:
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces)
    return body + (b"0\r\n\r\n" if end else b"")


def test_a_chunked_body_is_decoded_piece_by_piece() -> None:
    pieces = [b"a" * 8192, b"b" * 3, b"c" * 70000]
    assert list(read_chunked(io.BytesIO(chunked(*pieces)))) == pieces


@pytest.mark.parametrize("cut", [5, 8000, 8200, -5, -4])
def test_a_cut_body_raises(cut: int) -> None:
    data = chunked(b"a" * 8192, b"b" * 100)[:cut]
    with pytest.raises(BadAnswer):
        list(read_chunked(io.BytesIO(data)))


def test_a_body_without_its_last_chunk_raises() -> None:
    with pytest.raises(BadAnswer):
        list(read_chunked(io.BytesIO(chunked(b"whole chunk", end=False))))


def serve_once(path: Path, answer: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while not request.endswith(b"\r\n\r\n"):
                request += conn.recv(4096)
            assert request.startswith(b"GET /containers/x/archive?path=%2Fv HTTP/1.1\r\n")
            conn.sendall(answer)
        server.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_engine_stream_gives_the_status_and_the_body(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    thread = serve_once(sock, head + chunked(b"tar" * 5000, b"end"))
    with engine_stream(str(sock), "/containers/x/archive?path=%2Fv") as (status, body):
        assert status == 200
        assert b"".join(body) == b"tar" * 5000 + b"end"
    thread.join(10)


def test_engine_stream_reads_an_error_with_a_length(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    message = b'{"message":"Could not find the file /v in container x"}'
    head = f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(message)}\r\n\r\n".encode()
    thread = serve_once(sock, head + message)
    with engine_stream(str(sock), "/containers/x/archive?path=%2Fv") as (status, body):
        assert (status, b"".join(body)) == (404, message)
    thread.join(10)
