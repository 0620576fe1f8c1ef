"""HostConnection.stream: a remote command's output line by line as it comes (prompts
too), its exit status, and no process left behind on a timeout. ssh itself is replaced by
a local Python process: the connection's own code runs unchanged around it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from opencode_cloud.hosts.model import Host, HostConfig
from opencode_cloud.ssh import connection as connection_module
from opencode_cloud.ssh.connection import HostConnection, LineBuffer
from opencode_cloud.ssh.errors import SshError
from opencode_cloud.ssh.settings import SshSettings

pytestmark = pytest.mark.unit


def test_lines_are_split_decoded_and_stripped() -> None:
    lines = LineBuffer()
    assert lines.feed(b"one\r\ntw") == ["one"]
    assert lines.feed(b"o\nthree") == ["two"]
    assert lines.take_pending() == "three"
    assert lines.take_pending() is None
    assert lines.feed(b"\n") == []  # the end of the line already passed on: no empty line
    assert lines.feed(b"\n") == [""]  # a real empty line stays
    assert lines.feed(b"10%\r50%\r100%\n") == ["100%"]  # redrawn in place: the last state
    assert lines.feed(b"caf\xc3\xa9 \xff\n") == ["caf\u00e9 \ufffd"]


@pytest.fixture
def conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostConnection:
    """A connection whose 'ssh' runs the remote command as Python code, here."""
    settings = SshSettings(None, None, tmp_path / "ctl", "1m", 0.0)
    c = HostConnection(Host("web", HostConfig("web.example")), interactive=False,
                       settings=settings, hosts_file=tmp_path / "hosts.json")
    monkeypatch.setattr(c, "ensure_master", lambda: False)
    monkeypatch.setattr(connection_module.build, "ssh_argv",
                        lambda target, remote: [sys.executable, "-c", remote])
    return c


def test_output_comes_line_by_line_with_the_exit_status(conn: HostConnection) -> None:
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    code = (
        "import sys, time\n"
        "print('first', flush=True)\n"
        "sys.stderr.write('to stderr\\n'); sys.stderr.flush()\n"
        "sys.stdout.write('Password: '); sys.stdout.flush()\n"
        "time.sleep(1.5)\n"
        "print('\\nlast')\n"
        "sys.exit(3)\n"
    )
    status = conn.stream(code, on_line=lambda line: seen.append((time.monotonic() - started,
                                                                 line)), idle_flush=0.2)
    assert status == 3
    assert [line for _, line in seen] == ["first", "to stderr", "Password: ", "last"]
    prompt_at = seen[2][0]
    assert prompt_at < 1.2, "a prompt is shown while the command waits, not at the end"


def test_an_answer_to_a_prompt_reaches_the_command(conn: HostConnection) -> None:
    """A prompt (an unfinished line) goes to ``answer``; its reply is the command's input,
    and the prompt itself is not passed on as output."""
    asked: list[str] = []
    seen: list[str] = []
    code = ("import sys\nsys.stdout.write('Password: '); sys.stdout.flush()\n"
            "print(len(sys.stdin.readline().strip()))\n")

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return "secret"

    status = conn.stream(code, on_line=seen.append, answer=answer, idle_flush=0.2)
    assert (status, asked, seen) == (0, ["Password: "], ["6"])


def test_a_timeout_kills_the_process(conn: HostConnection) -> None:
    pids: list[str] = []
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        conn.stream(code, on_line=pids.append, timeout=1)
    assert time.monotonic() - started < 5
    assert not Path(f"/proc/{pids[0]}").exists()  # killed and reaped


def test_ssh_failures_are_ssh_errors(conn: HostConnection) -> None:
    code = ("import sys\nsys.stderr.write('ssh: connect to host web.example port 22: "
            "Connection refused\\n')\nsys.exit(255)\n")
    with pytest.raises(SshError) as info:
        conn.stream(code, on_line=lambda line: None)
    assert "refused" in str(info.value).lower()
    # a remote command's own 255 with nothing ssh-like is its exit status
    assert conn.stream("import sys; sys.exit(255)", on_line=lambda line: None) == 255
