"""The plain HTTP/1.0 GET used by status and host test, against a real unix socket server."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from opencode_cloud.engine.http import BadAnswer, engine_get, parse_answer, unix_socket_path


def serve_once(path: Path, answer: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    seen: list[bytes] = []

    def run() -> None:
        connection, _ = server.accept()
        with connection:
            seen.append(connection.recv(4096))
            connection.sendall(answer)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.seen = seen  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_get_reads_status_headers_and_body(tmp_path: Path):
    body = b'{"Id": "abc", "State": {"Running": true}}'
    answer = (b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
              b"\r\n" + body)
    server = serve_once(tmp_path / "docker.sock", answer)
    got = engine_get(str(tmp_path / "docker.sock"), "/containers/x/json")
    server.join(5)
    assert server.seen[0].startswith(b"GET /containers/x/json HTTP/1.0\r\n")
    assert got.status == 200 and got.headers["api-version"] == "1.41"
    assert got.json()["State"]["Running"] is True


def test_nothing_listening_is_an_oserror(tmp_path: Path):
    with pytest.raises(OSError):
        engine_get(str(tmp_path / "absent.sock"), "/info")


def test_garbage_is_a_bad_answer():
    with pytest.raises(BadAnswer):
        parse_answer(b"SSH-2.0-OpenSSH\r\n")
    with pytest.raises(BadAnswer):
        parse_answer(b"HTTP/1.0 abc\r\n\r\n")
    assert parse_answer(b"HTTP/1.0 404 Not Found\r\n\r\n{}").status == 404


def test_unix_socket_path():
    assert unix_socket_path("unix:///var/run/docker.sock") == "/var/run/docker.sock"
    assert unix_socket_path("tcp://127.0.0.1:2375") is None
    assert unix_socket_path(None) is None
