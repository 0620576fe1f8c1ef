"""Reading an exec's output: nothing of it is lost, whichever read brought it.

The Engine here is a real unix socket (EngineSocket) that sends the upgrade answer and a
quick command's whole output in one write, as a fast command over SSH often does; the
client is docker-py's own APIClient.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker import APIClient
from docker.utils.socket import frames_iter

from opencode_cloud.engine import exec_stream
from tests.unit.fake_docker import EngineSocket

pytestmark = pytest.mark.unit

RAW_STREAM = {"Content-Type": "application/vnd.docker.raw-stream", "Connection": "Upgrade",
              "Upgrade": "tcp"}


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


@pytest.fixture
def api(tmp_path: Path):
    body = frame(1, b"kept\n") + frame(2, b"a warning\n") + frame(1, b"") + frame(1, b"end\n")
    routes = {"/v1.41/exec/e1/start": (101, body, RAW_STREAM),
              "/v1.41/exec/e1/json": (200, b'{"ExitCode": 3}',
                                      {"Content-Type": "application/json"}),
              "/v1.41/containers/c1/exec": (201, b'{"Id": "e1"}',
                                            {"Content-Type": "application/json"})}
    with EngineSocket(tmp_path / "docker.sock", routes):
        client = APIClient(base_url=f"unix://{tmp_path}/docker.sock", version="1.41")
        yield client
        client.close()


def test_docker_py_alone_loses_output_that_came_with_the_answer(api: APIClient) -> None:
    """Why ExecStream exists (docker/docker-py#3332): the raw socket misses the buffer."""
    raw = api.exec_start("e1", socket=True)
    assert list(frames_iter(getattr(raw, "_sock", raw), False)) == []


def test_every_frame_arrives_in_order_with_its_stream(api: APIClient) -> None:
    stream = exec_stream.open_exec(api, "e1")
    assert list(stream.frames()) == [(1, b"kept\n"), (2, b"a warning\n"), (1, b"end\n")]
    stream.close()


def test_run_collected_gives_the_exit_code_and_all_output(api: APIClient) -> None:
    assert exec_stream.run_collected(api, "c1", ["cat", "kept.txt"]) == (
        3, b"kept\na warning\nend\n")


class Pieces:
    """A socket that hands out its bytes a few at a time, as a slow link does."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def recv(self, n: int) -> bytes:
        piece, self.data = self.data[:min(n, self.size)], self.data[min(n, self.size):]
        return piece

    def gettimeout(self) -> None:
        return None


@pytest.mark.parametrize("size", [1, 3, 8, 1000])
def test_frames_split_anywhere_are_put_together(size: int) -> None:
    data = frame(1, b"x" * 20) + frame(2, b"yy")
    stream = exec_stream.ExecStream(Pieces(data, size), tty=False)
    assert list(stream.frames()) == [(1, b"x" * 20), (2, b"yy")]


def test_a_cut_frame_ends_the_stream_with_what_was_whole() -> None:
    stream = exec_stream.ExecStream(Pieces(frame(1, b"whole") + frame(1, b"cut")[:-1], 4),
                                    tty=False)
    assert list(stream.frames()) == [(1, b"whole")]


def test_a_terminal_stream_is_raw_bytes() -> None:
    stream = exec_stream.ExecStream(Pieces(b"\x1b[1mhi\r\n", 4), tty=True)
    assert b"".join(data for _s, data in stream.frames()) == b"\x1b[1mhi\r\n"


def test_with_nothing_buffered_the_output_comes_from_the_socket() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader = ours.makefile("rb")
        theirs.sendall(b"HTTP/1.1 101 UPGRADED\r\n\r\n")
        assert [reader.readline(), reader.readline()] == [b"HTTP/1.1 101 UPGRADED\r\n",
                                                          b"\r\n"]
        raw = reader.raw
        raw._response = SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=reader)))
        ours.settimeout(7)
        stream = exec_stream.ExecStream(raw, tty=False)
        assert ours.gettimeout() == 7  # the socket is as it was
        theirs.sendall(frame(1, b"later"))
        theirs.shutdown(socket.SHUT_WR)
        assert list(stream.frames()) == [(1, b"later")]
