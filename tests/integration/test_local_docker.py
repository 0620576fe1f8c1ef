"""Docker missing or stopped on this machine, in a real pseudo-terminal: a container
command explains what is wrong, shows this machine's system and the exact commands it
would run (the same plans as for a remote host), asks, and after a "no" has changed
nothing. Without a terminal it asks nothing and names the command that would.

DOCKER_HOST points at a unix socket with no Engine behind it: a socket file nobody
listens on (connection refused: "not running") or no file at all ("not installed or not
running"). The machine's real Engine is never touched.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pexpect
import pytest


def dead_socket(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "docker.sock"
    if kind == "refusing":
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.close()  # the file stays; connecting is refused
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize(("kind", "explanation"), [
    ("refusing", "the Docker daemon is not running on this machine"),
    ("absent", "Docker is not installed or not running on this machine"),
])
def test_a_container_command_offers_to_start_docker_and_no_changes_nothing(
        occ, tmp_path: Path, kind: str, explanation: str) -> None:
    sock = dead_socket(tmp_path, kind)
    occ.env["DOCKER_HOST"] = f"unix://{sock}"
    occ("config", "set", "opencode_web_port", "3999", check=True)
    before = tree(occ.home)

    child = pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "status"], env=occ.env,
                          timeout=60, encoding="utf-8", dimensions=(50, 200))
    child.expect(r"Install Docker on this machine now\? \[y/N\]: ")
    shown = child.before
    assert f"Warning: {explanation}" in shown, shown
    assert f"occ uses the Engine at DOCKER_HOST (unix://{sock})" in shown
    assert "System: Debian GNU/Linux" in shown  # this machine's own /etc/os-release
    assert "dpkg --configure -a" in shown
    # dockerd is installed here, so occ offers to finish the job: start it
    assert "Docker is installed on this machine but not ready to use" in shown
    assert "service docker start" in shown
    if os.geteuid() != 0:  # the tests' account: through sudo, which wants a password
        user = os.environ.get("USER") or __import__("pwd").getpwuid(os.geteuid()).pw_name
        assert "through sudo (it will ask for your password)" in shown
        assert f"usermod -aG docker {user}" in shown
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    output = shown + child.before
    assert child.exitstatus == 1, output
    assert "Error: Docker was not installed on this machine: you said no" in output
    assert "occ host install-docker local" in output
    assert "(1/" not in output and "password for" not in output  # no step ran, no sudo

    assert tree(occ.home) == before  # no file of occ's changed
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(OSError):
        probe.connect(str(sock))  # and still no Engine there

    # Without a terminal: nothing asked, nothing run, and the command that would do it.
    result = occ("status", input="")
    assert result.returncode == 1
    assert explanation in result.stderr
    assert "occ host install-docker local" in result.stderr
    result = occ("host", "install-docker", "local", input="")
    assert result.returncode == 1
    assert "there is no terminal to ask whether occ may install it" in result.stderr
    assert "occ host install-docker local --yes" in result.stderr
    assert tree(occ.home) == before
