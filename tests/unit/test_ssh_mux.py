"""The control-socket requests occ sends to an OpenSSH master (PROTOCOL.mux, version 4).

The real master is exercised by every lab test; here the bytes are checked, and a fake
master on a unix socket answers OK, FAILURE or nonsense.
"""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from opencode_cloud.ssh import mux


def test_open_forward_request_bytes():
    raw = mux.forward_request(7, "/tmp/a.sock", "/var/run/docker.sock", close=False)
    length, kind, request, ftype = struct.unpack(">IIII", raw[:16])
    assert length == len(raw) - 4
    assert (kind, request, ftype) == (0x10000006, 7, 1)
    body = raw[16:]
    (n,) = struct.unpack(">I", body[:4])
    assert body[4:4 + n] == b"/tmp/a.sock"
    assert struct.unpack(">I", body[4 + n:8 + n])[0] == 0xFFFFFFFE  # a unix socket path
    assert body.endswith(b"/var/run/docker.sock" + struct.pack(">I", 0xFFFFFFFE))
    close = mux.forward_request(7, "/tmp/a.sock", "/var/run/docker.sock", close=True)
    assert struct.unpack(">I", close[4:8])[0] == 0x10000007


def test_hello_bytes():
    assert mux.hello() == struct.pack(">III", 8, 1, 4)


def fake_master(path: Path, reply: bytes, said: list[bytes]) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        connection, _ = server.accept()
        with connection:
            connection.sendall(mux.hello())
            said.append(connection.recv(4096))
            connection.sendall(reply)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def message(*words: int, text: str | None = None) -> bytes:
    payload = struct.pack(">" + "I" * len(words), *words)
    if text is not None:
        payload += struct.pack(">I", len(text)) + text.encode()
    return struct.pack(">I", len(payload)) + payload


def test_master_says_ok(tmp_path: Path):
    said: list[bytes] = []
    thread = fake_master(tmp_path / "ctl", message(mux.MUX_S_OK, 1), said)
    mux.unix_forward(str(tmp_path / "ctl"), "/tmp/x.sock", "/var/run/docker.sock")
    thread.join(5)
    assert said[0].startswith(mux.hello())


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (message(mux.MUX_S_FAILURE, 1, text="Port forwarding failed"), "Port forwarding failed"),
        (message(mux.MUX_S_OK, 9), "reply to request 9"),
        (struct.pack(">I", 2) + b"xx", "bad control message length"),
        (b"", "closed the control connection"),
    ],
)
def test_master_refusals_and_nonsense_are_mux_errors(tmp_path: Path, reply: bytes, error: str):
    thread = fake_master(tmp_path / "ctl", reply, [])
    with pytest.raises(mux.MuxError, match=error):
        mux.unix_forward(str(tmp_path / "ctl"), "/tmp/x.sock", "/var/run/docker.sock")
    thread.join(5)


def test_no_master_is_a_mux_error(tmp_path: Path):
    with pytest.raises(mux.MuxError):
        mux.unix_forward(str(tmp_path / "absent"), "/tmp/x.sock", "/var/run/docker.sock")
