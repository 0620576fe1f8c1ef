"""The lab itself works: real sshd and real dockerd on each host, the jump-only host, the
delaying relay, the control verbs. If these fail, no other lab test means anything."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

try:  # see conftest: tests/lab may or may not be a package
    from .lab_relay import DelayRelay
except ImportError:
    from lab_relay import DelayRelay  # type: ignore[no-redef]

if TYPE_CHECKING:
    from conftest import Lab


def ssh(
    lab: Lab, known_hosts: Path, target: str, *command: str, extra: list[str] | None = None,
    key: str | None = None, user: str | None = None, port: int | None = None, timeout: float = 60,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    argv = ["ssh", *lab.ssh_base_args(known_hosts, key), *(extra or [])]
    if port is not None:
        argv += ["-p", str(port)]
    argv += [f"{user or lab.user}@{target}", "--", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "known_hosts"


def proxy_via(lab: Lab, known_hosts: Path, jump: str) -> list[str]:
    # -J would not pass -i or -o options on to the jump hop: an explicit ProxyCommand does.
    base = " ".join(lab.ssh_base_args(known_hosts))
    return ["-o", f"ProxyCommand=ssh {base} -W %h:%p {lab.user}@{lab.hosts[jump].address}"]


@pytest.mark.parametrize("name", ["h1", "h2"])
def test_ssh_runs_docker_on_that_hosts_own_engine(lab: Lab, known_hosts: Path, name: str) -> None:
    host = lab.hosts[name]
    r = ssh(lab, known_hosts, host.address, "docker", "version", "--format", "{{.Server.Version}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    r = ssh(lab, known_hosts, host.address, "docker", "info", "--format", "{{.DockerRootDir}}")
    assert r.stdout.strip() == host.docker_data_root, "the session saw another host's engine"


def test_host_key_is_the_one_lab_json_names(lab: Lab, tmp_path: Path) -> None:
    h1 = lab.hosts["h1"]
    strict = tmp_path / "known_hosts_strict"
    strict.write_text(h1.known_hosts_line + "\n")
    args = ["-o", "StrictHostKeyChecking=yes"]
    r = ssh(lab, strict, h1.address, "true", extra=args)
    assert r.returncode == 0, r.stderr
    assert Path(h1.host_key_pub).read_text().split()[1] in h1.known_hosts_line


def test_h3_is_refused_directly_but_reachable_through_h1(lab: Lab, known_hosts: Path) -> None:
    h3 = lab.hosts["h3"]
    assert h3.jump_only and h3.reach_via == "h1"
    direct = ssh(lab, known_hosts, h3.address, "true", timeout=20)
    assert direct.returncode == 255
    assert "refused" in direct.stderr.lower()

    jumped = ssh(
        lab, known_hosts, h3.address, "docker", "info", "--format", "{{.DockerRootDir}}",
        extra=proxy_via(lab, known_hosts, "h1"),
    )  # fmt: skip
    assert jumped.returncode == 0, jumped.stderr
    assert jumped.stdout.strip() == h3.docker_data_root


def test_unreachable_address_is_refused_at_once(lab: Lab) -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((lab.unreachable_address, 22), timeout=5)
    assert time.monotonic() - start < 1


def test_keys(lab: Lab, known_hosts: Path) -> None:
    h2 = lab.hosts["h2"].address
    wrong = ssh(lab, known_hosts, h2, "true", key=lab.keys.unauthorized)
    assert wrong.returncode == 255 and "Permission denied" in wrong.stderr
    # The passphrase key is authorized but cannot be used in batch mode without its passphrase.
    locked = ssh(lab, known_hosts, h2, "true", key=lab.keys.passphrase)
    assert locked.returncode == 255
    unlocked = subprocess.run(
        ["ssh-keygen", "-y", "-P", lab.keys.passphrase_text, "-f", lab.keys.passphrase],
        capture_output=True, text=True,
    )  # fmt: skip
    assert unlocked.returncode == 0
    assert unlocked.stdout.split()[1] == Path(lab.keys.passphrase + ".pub").read_text().split()[1]


def test_user_without_docker_group_gets_permission_denied(lab: Lab, known_hosts: Path) -> None:
    h1 = lab.hosts["h1"].address
    r = ssh(lab, known_hosts, h1, "docker", "version", user=lab.nodocker_user)
    assert r.returncode != 0
    assert "permission denied" in r.stderr.lower()


def test_relay_adds_the_delay_to_a_round_trip(lab: Lab) -> None:
    h1 = lab.hosts["h1"]

    def round_trip(address: tuple[str, int]) -> float:
        # An SSH server sends its key exchange only after it has read the client's banner:
        # client banner out, KEXINIT back is one round trip.
        with socket.create_connection(address, timeout=10) as s:
            s.settimeout(10)
            assert s.recv(256).startswith(b"SSH-2.0-")
            start = time.monotonic()
            s.sendall(b"SSH-2.0-occlab_smoke\r\n")
            assert s.recv(65536)
            return time.monotonic() - start

    direct = round_trip((h1.address, h1.port))
    with DelayRelay(target=(h1.address, h1.port), delay_ms=25) as relay:
        delayed = round_trip(("127.0.0.1", relay.port))
        assert relay.connections == 1
    assert delayed >= 0.050
    assert delayed > direct
    assert delayed < 1.0


def test_ssh_through_the_relay(lab: Lab, known_hosts: Path, lab_relay) -> None:
    h1 = lab.hosts["h1"]
    relay = lab_relay((h1.address, h1.port), delay_ms=25)
    start = time.monotonic()
    r = ssh(lab, known_hosts, "127.0.0.1", "echo", "through", port=relay.port,
            extra=["-o", f"HostKeyAlias={h1.address}"])  # fmt: skip
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "through"
    assert elapsed >= 0.2  # an SSH login takes several round trips of 50 ms
    assert relay.bytes_relayed > 0


def test_lab_engine_socket_works_with_the_docker_sdk(lab: Lab, lab_docker) -> None:
    client = lab_docker("h1")
    assert client.ping()
    assert client.info()["DockerRootDir"] == lab.hosts["h1"].docker_data_root
    assert any(lab.base_image in image.tags for image in client.images.list())


def test_lab_engine_pulls_through_the_lab_registry_mirror(lab: Lab, lab_docker) -> None:
    # FROM debian:bookworm-slim on a lab host resolves through its mirror, the lab registry.
    client = lab_docker("h2")
    image = client.images.pull("debian", tag="bookworm-slim")
    assert lab.base_image in image.tags
    assert any(d.startswith("debian@sha256:") for d in image.attrs["RepoDigests"])


def test_cut_then_restore(lab: Lab, known_hosts: Path) -> None:
    h2 = lab.hosts["h2"]
    assert ssh(lab, known_hosts, h2.address, "true").returncode == 0
    # An open session dies with the cut, like any connection to that host.
    session = subprocess.Popen(
        ["ssh", *lab.ssh_base_args(known_hosts), f"{lab.user}@{h2.address}", "echo up; sleep 60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert session.stdout is not None
        assert session.stdout.readline().strip() == "up"
        lab.control("cut", "h2")
        assert session.wait(timeout=10) != 0
        refused = ssh(lab, known_hosts, h2.address, "true", timeout=20)
        assert refused.returncode == 255 and "refused" in refused.stderr.lower()
    finally:
        if session.poll() is None:
            session.kill()
        session.communicate()
        lab.control("restore", "h2")
    r = ssh(lab, known_hosts, h2.address, "docker", "version", "--format", "{{.Server.Version}}")
    assert r.returncode == 0, r.stderr


def test_dockerd_stop_and_start(lab: Lab, lab_docker) -> None:
    h3 = lab.hosts["h3"]
    try:
        lab.control("dockerd-stop", "h3")
        with pytest.raises(OSError), socket.socket(socket.AF_UNIX) as s:
            s.connect(h3.docker_socket)
    finally:
        lab.control("dockerd-start", "h3")
    assert lab_docker("h3").ping()
