"""Installing Docker on a bare server (the lab's h4: a debootstrapped Debian with sshd and
sudo, no Docker) with occ alone, from "I have a server" to "opencode runs there".

The tests run in this file's order and build on each other: the module starts by resetting
h4 to its pristine rootfs; declining installs nothing; `host add --yes` installs; stopping
the daemon by hand and re-running finishes the job (also through a sudo that asks for a
password, in a terminal); finally opencode starts there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect
import pytest
from lab_occ import OccRun

if TYPE_CHECKING:
    from conftest import Lab, LabBareHost

NAME = "h4"
INSTALL_TIMEOUT = 900  # seconds: the packages come from Debian's mirror


@pytest.fixture(scope="module")
def bare(lab: Lab) -> LabBareHost:
    if NAME not in lab.bare_hosts:
        pytest.fail(f"lab.json has no bare host {NAME}: bring the lab up with this "
                    "checkout's scripts/lab", pytrace=False)
    lab.control("reset", NAME, timeout=300)  # a pristine server, whatever ran before
    state = lab.bare_docker_state(NAME)
    assert state["sshd"] and not state["installed"] and not state["running"], state
    return lab.bare_hosts[NAME]


def add_args(lab: Lab, bare: LabBareHost, name: str = NAME, user: str | None = None) -> list[str]:
    return ["host", "add", name, bare.address, "-u", user or bare.sudo_user,
            "-i", lab.keys.plain]


def spawn(occ: OccRun, *args: str, timeout: float = 120):
    return pexpect.spawn(sys.executable, ["-m", "opencode_cloud", *args],
                         env={**occ.env, "NO_COLOR": "1"}, timeout=timeout, encoding="utf-8")


def require_installed(lab: Lab) -> None:
    state = lab.bare_docker_state(NAME)
    if not state["installed"]:
        pytest.fail("Docker is not installed on h4: this test builds on "
                    "test_add_yes_installs_docker (run the whole module)", pytrace=False)


def test_declining_installs_nothing_and_keeps_the_host_marked(occ: OccRun, lab: Lab,
                                                               bare: LabBareHost) -> None:
    child = spawn(occ, *add_args(lab, bare))
    child.expect(r"Install Docker on h4 now\? \[y/N\]: ")
    shown = child.before
    # the distribution, found in its /etc/os-release, and every command, before asking
    assert f"System: {bare.os} (ID=debian" in shown
    for command in ("dpkg --configure -a", "apt-get update",
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y "
                    "--no-install-recommends docker.io",
                    "service docker start", f"usermod -aG docker {bare.sudo_user}"):
        assert re.search(rf"\[h4\] +{re.escape(command)}\r?\n", shown), (command, shown)
    assert "run as root, through sudo" in shown
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    output = shown + child.before
    assert child.exitstatus == 0, output  # the host was added; Docker is a warning
    assert "Added host 'h4'" in output
    assert "Docker was not installed on h4: you said no" in output
    assert "occ host install-docker h4" in output
    assert "(1/" not in output  # no step ran

    state = lab.bare_docker_state(NAME)
    assert not state["installed"] and not state["running"], state
    assert occ.hosts()["hosts"]["h4"]["docker_missing"] is True
    assert "h4 (no Docker)" in occ("host", "list").stdout
    listed = json.loads(occ("host", "list", "--json").stdout)["hosts"]
    assert listed[0]["name"] == "h4" and listed[0]["docker_missing"] is True
    shown = occ("host", "show", "h4").stdout
    assert "missing at the last check (occ host install-docker h4)" in shown

    # Without a terminal and without --yes: nothing installed, and the command to run.
    r = occ("host", "test", "h4")
    assert r.returncode == 1
    assert "[h4] Error: Docker is not installed on the host" in r.stderr
    assert "occ host install-docker h4" in r.stderr
    r = occ("host", "install-docker", "h4")
    assert r.returncode == 1
    assert "there is no terminal to ask whether occ may install it" in r.stderr
    assert "occ host install-docker h4 --yes" in r.stderr
    state = lab.bare_docker_state(NAME)
    assert not state["installed"], state


def test_add_yes_installs_docker(occ: OccRun, lab: Lab, bare: LabBareHost) -> None:
    started = time.monotonic()
    r = occ(*add_args(lab, bare), "--yes", timeout=INSTALL_TIMEOUT)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "(1/5)" in line)
    # everything from the host, commands and their output, carries its prefix
    assert all(line.startswith("[h4] ") for line in lines[first:]), lines[first:]
    for n, command in enumerate(("dpkg --configure -a", "apt-get update",
                                 "apt-get install -y --no-install-recommends docker.io",
                                 "service docker start",
                                 f"usermod -aG docker {bare.sudo_user}"), 1):
        assert any(line.startswith(f"[h4] ({n}/5) ") and line.endswith(command)
                   for line in lines), (n, command)
    assert "[h4] Setting up docker.io" in r.stdout  # apt's own output, streamed
    assert re.search(r"\[h4\] Docker 20\.10\.\S+ \(API 1\.\d+\) runs on h4", r.stdout)
    print(f"\ninstall on a bare host: {elapsed:.1f} s")

    state = lab.bare_docker_state(NAME)
    assert state["installed"] and state["running"], state
    assert bare.sudo_user in state["docker_group"]
    assert "docker_missing" not in occ.hosts()["hosts"]["h4"]
    assert "(no Docker)" not in occ("host", "list").stdout

    # The login that installed it was not in the group: occ logged in anew, and host
    # test (over the kept connection) reaches the Engine as that user, without sudo.
    report = json.loads(occ("host", "test", "h4", "--json").stdout)
    assert report["docker"]["socket_usable"] is True
    assert report["docker"]["server_version"].startswith("20.10")
    assert report["os"].startswith("Debian GNU/Linux 12")
    r = occ("host", "test", "h4")
    assert r.returncode == 0 and "[h4] Docker: server 20.10" in r.stdout
    # The package's init script starts Docker at boot: host test says so.
    assert "[h4] Docker at boot: enabled (sysv)" in r.stdout
    assert report["docker"]["at_boot"] == "enabled" and report["docker"]["init"] == "sysv"


def test_host_test_says_when_docker_would_not_start_at_boot(occ: OccRun, lab: Lab,
                                                            bare: LabBareHost, tmp_path) -> None:
    require_installed(lab)
    assert occ(*add_args(lab, bare), "--no-verify").returncode == 0

    def on_h4(command: str) -> None:
        argv = ["ssh", *lab.ssh_base_args(tmp_path / "known_hosts"), "-p", str(bare.port),
                f"{bare.sudo_user}@{bare.address}", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    on_h4("sudo -n update-rc.d -f docker remove")  # an admin disabled it
    try:
        r = occ("host", "test", "h4")
        assert r.returncode == 0, r.stderr  # Docker runs now: a warning, not a failure
        assert "Docker at boot: not enabled (sysv)" in r.stderr + r.stdout
        assert "On the host: sudo update-rc.d docker defaults" in r.stderr + r.stdout
        report = json.loads(occ("host", "test", "h4", "--json").stdout)
        assert report["docker"]["at_boot"] == "disabled"
    finally:
        on_h4("sudo -n update-rc.d docker defaults")  # the fix the warning names
    assert "[h4] Docker at boot: enabled (sysv)" in occ("host", "test", "h4").stdout


def test_rerun_after_stopping_the_daemon_finishes_the_job(occ: OccRun, lab: Lab,
                                                          bare: LabBareHost) -> None:
    require_installed(lab)
    assert occ(*add_args(lab, bare), "--no-verify").returncode == 0
    lab.control("service-docker-stop", NAME)  # as an admin would, on the host
    assert not lab.bare_docker_state(NAME)["running"]
    r = occ("host", "test", "h4")
    assert r.returncode == 1 and "daemon is not running" in r.stderr
    assert "occ host install-docker h4" in r.stderr

    r = occ("host", "install-docker", "h4", "--yes", timeout=INSTALL_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Docker is installed on h4 but not ready to use" in r.stdout
    assert "apt-get install" not in r.stdout  # the package is there: not again
    assert "[h4] (2/3) start Docker now: service docker start" in r.stdout
    assert lab.bare_docker_state(NAME)["running"]

    r = occ("host", "install-docker", "h4", "--yes")
    assert r.returncode == 0
    assert "already works on h4; nothing to do" in r.stdout


def test_a_container_command_offers_to_start_or_install_docker(occ: OccRun, lab: Lab,
                                                              bare: LabBareHost) -> None:
    require_installed(lab)
    assert occ(*add_args(lab, bare), "--no-verify").returncode == 0
    lab.control("service-docker-stop", NAME)
    # Without a terminal: the diagnosis, with the command that fixes it, and exit 1.
    r = occ("status", "--host", "h4")
    assert r.returncode == 1
    assert "[h4] Error: Docker is installed but its daemon is not running" in r.stderr
    assert "occ host install-docker h4" in r.stderr
    assert not lab.bare_docker_state(NAME)["running"]
    # In a terminal: occ offers to finish the job, and then runs the command.
    child = spawn(occ, "status", "--host", "h4", timeout=INSTALL_TIMEOUT)
    child.expect(r"Install Docker on h4 now\? \[y/N\]: ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "[h4] State:" in child.before
    assert lab.bare_docker_state(NAME)["running"]


def test_sudo_asking_a_password_in_a_terminal_and_without_one(occ: OccRun, lab: Lab,
                                                              bare: LabBareHost) -> None:
    """An account whose sudo asks its password, not yet in the docker group, daemon
    stopped: without a terminal occ says why it cannot; in a terminal sudo's own prompt
    comes through (a wrong password too), and the job is finished."""
    require_installed(lab)
    user = bare.sudo_password_user
    assert occ(*add_args(lab, bare, "h4pw", user), "--no-verify").returncode == 0
    lab.control("service-docker-stop", NAME)

    r = occ("host", "install-docker", "h4pw", "--yes")
    assert r.returncode == 1
    assert f"sudo on h4pw asks {user} for a password, and there is no terminal" in r.stderr
    assert "sudo service docker start" in r.stderr  # what to type by hand
    assert not lab.bare_docker_state(NAME)["running"]

    child = spawn(occ, "host", "install-docker", "h4pw", timeout=INSTALL_TIMEOUT)
    child.expect(r"Install Docker on h4pw now\? \[y/N\]: ")
    assert "it will ask for your password" in child.before
    child.sendline("y")
    child.expect(rf"\[h4pw\] \[sudo\] password for {user}: ")
    child.sendline("not-the-password")
    child.expect("Sorry, try again")
    child.expect(rf"\[h4pw\] \[sudo\] password for {user}: ")
    child.sendline(bare.sudo_password)
    child.expect(pexpect.EOF)
    child.close()
    output = child.before
    assert child.exitstatus == 0, output
    assert bare.sudo_password not in output and "not-the-password" not in output  # no echo
    assert f"usermod -aG docker {user}" in output
    assert "runs on h4pw" in output
    state = lab.bare_docker_state(NAME)
    assert state["running"] and user in state["docker_group"], state
    assert occ("host", "test", "h4pw").returncode == 0  # as that user, without sudo


def test_start_on_the_installed_engine_is_healthy(occ: OccRun, lab: Lab,
                                                  bare: LabBareHost) -> None:
    """From a bare server to opencode running there. Needs the routing of container
    commands over SSH (issue 5)."""
    require_installed(lab)
    assert occ(*add_args(lab, bare), "--no-verify").returncode == 0
    if not lab.bare_docker_state(NAME)["running"]:
        assert occ("host", "install-docker", "h4", "--yes").returncode == 0
    ca_bundle = "/etc/ssl/certs/ca-certificates.crt"  # npm over the machine's TLS proxy
    if Path(ca_bundle).exists():
        assert occ("config", "set", "extra_ca_certs", ca_bundle).returncode == 0
    started = time.monotonic()
    try:
        r = occ("start", "--host", "h4", timeout=1800)  # builds the image on h4 itself
        assert r.returncode == 0, r.stdout + r.stderr
        print(f"\nfirst start on h4 (image build included): {time.monotonic() - started:.0f} s")
        assert all(line.startswith("[h4] ") for line in r.stdout.splitlines() if line.strip())
        r = occ("status", "--host", "h4", "--json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["state"] == "running" and report["health"] == "healthy", report
        assert report["host"] == "h4"
    finally:
        occ("reset", "--volumes", "--force", "--host", "h4", timeout=300)
