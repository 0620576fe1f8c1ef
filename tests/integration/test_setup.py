"""`occ setup` on this machine's real Engine: walked in a real pseudo-terminal (every
question answered, bad answers asked again, a second run showing the first run's answers
as defaults), and `occ setup --yes` without a terminal. Each ends with opencode answering
on the chosen port.

Each test has its own OCC_INSTANCE (containers and volumes), config folder and ports, and
removes its containers and volumes at the end: the Engine is shared. The image is the one
the other integration tests use (same build inputs, extra_ca_certs included), so it is
built at most once.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Iterator

import pexpect
import pytest

from tests.integration.conftest import Service, free_port, http_status

SECRET = "sk-ant-setup-test-0123456789abcdef"
START_TIMEOUT = 900  # seconds: a first run on a fresh Engine builds the image


@pytest.fixture
def fresh(tmp_path, docker_client) -> Iterator[Service]:
    svc = Service(tmp_path, docker_client)
    yield svc
    svc.cleanup()


def spawn_setup(svc: Service, *args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "setup", *args],
                         env=svc.env, timeout=60, encoding="utf-8", dimensions=(50, 200))


def health(svc: Service, port: int) -> dict:
    import base64

    user, password = svc.credentials()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/global/health")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_setup_in_a_terminal_asks_everything_and_starts_the_service(fresh: Service) -> None:
    port = free_port()
    child = spawn_setup(fresh)
    child.expect("Where should opencode run\\?")
    child.expect(r"Run on \[local\]: ")
    child.sendline("mars")  # not a choice: asked again
    child.expect(r"'mars' is not one of")
    child.expect(r"Run on \[local\]: ")
    child.sendline("local")
    child.expect(rf"Port of the web UI \[{fresh.port}\]: ")
    child.sendline("70000")  # out of range: asked again, with the reason
    child.expect(r"70000 is not in the range 1<=x<=65535")
    child.expect(rf"Port of the web UI \[{fresh.port}\]: ")
    child.sendline(str(port))
    child.expect(r"Address to listen on .*\[127\.0\.0\.1\]: ")
    child.sendline("localhost")  # not an IP address: asked again, with the reason
    child.expect(r"'localhost' is not an IP address")
    child.expect(r"Address to listen on .*\[127\.0\.0\.1\]: ")
    child.sendline("127.0.0.1")
    child.expect(r"Run Cockpit, a web console of the sandbox\? \[y/N\]: ")
    child.sendline("n")
    child.expect(r"API key variable to set .*empty: done\): ")
    child.sendline("ANTHROPIC_API_KEY")
    child.expect(r"Value of ANTHROPIC_API_KEY \(hidden; empty removes it\): ")
    child.sendline(SECRET)
    child.expect(r"ANTHROPIC_API_KEY=sk-…\(hidden\)")
    child.expect(r"API key variable to set .*empty: done\): ")
    child.sendline("")
    child.expect(pexpect.EOF, timeout=START_TIMEOUT)
    child.close()
    output = child.before
    assert child.exitstatus == 0, output
    assert SECRET not in output and SECRET[6:] not in output  # typed hidden, shown masked
    assert "URL:" in output and f"http://127.0.0.1:{port}" in output
    assert re.search(r"Username: +opencode", output), output
    assert "occ credentials" in output and "Log in: open" in output

    config = json.loads(fresh.config_file.read_text())
    assert config["opencode_web_port"] == port
    assert config["bind_address"] == "127.0.0.1" and config["cockpit_enabled"] is False
    assert config["container_env"] == [f"ANTHROPIC_API_KEY={SECRET}"]
    assert health(fresh, port)["healthy"] is True
    assert f"ANTHROPIC_API_KEY={SECRET}" in fresh.container().attrs["Config"]["Env"]
    assert http_status(f"http://127.0.0.1:{port}/") == 401  # a login is needed

    # A second run offers the first run's answers as its defaults; Enter keeps them all.
    child = spawn_setup(fresh)
    child.expect(r"Run on \[local\]: ")
    child.sendline("")
    child.expect(rf"Port of the web UI \[{port}\]: ")
    child.sendline("")
    child.expect(r"\[127\.0\.0\.1\]: ")
    child.sendline("")
    child.expect(r"\[y/N\]: ")
    child.sendline("")
    child.expect(r"Variables for the container now: ANTHROPIC_API_KEY=sk-…\(hidden\)")
    child.expect(r"empty: done\): ")
    child.sendline("")
    child.expect(pexpect.EOF, timeout=START_TIMEOUT)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "nothing changed" in child.before
    assert "opencode is already running" in child.before
    assert json.loads(fresh.config_file.read_text()) == config


def test_setup_yes_without_a_terminal_takes_the_current_settings(fresh: Service) -> None:
    result = fresh("setup", "--yes", input="", timeout=START_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the current settings" in result.stdout
    assert f"http://127.0.0.1:{fresh.port}" in result.stdout
    assert health(fresh, fresh.port)["healthy"] is True
    assert fresh.container().attrs["HostConfig"]["PortBindings"]["3000/tcp"][0] == {
        "HostIp": "127.0.0.1", "HostPort": str(fresh.port)}
