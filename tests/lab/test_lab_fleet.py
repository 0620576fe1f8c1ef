"""The lab's fleet works: 20 ordinary hosts, each with its own sshd and Engine; the control
verbs on the new ones; the sandbox image seeded onto several hosts from this machine's
Engine; 20 relays at once, each adding the round trip it promises. Fleet tests and the
fleet bench (issue 10) stand on these."""

from __future__ import annotations

import contextlib
import re
import socket
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Lab

# Spelled out, not read from lab.json: the test checks that the lab has exactly these.
FLEET = ["h1", "h2", *(f"h{n}" for n in range(5, 9)), *(f"h{n}" for n in range(10, 24))]
SEEDED = ["h5", "h6", "h7"]
SEED_IMAGE_NAME = "occlab-seed/opencode-cloud-sandbox"  # the lab test's own name for it
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def known_hosts(lab: Lab, tmp_path: Path) -> Path:
    """Every lab host's real key, and nothing else: a wrong key fails the login."""
    path = tmp_path / "known_hosts"
    path.write_text("".join(h.known_hosts_line + "\n" for h in lab.hosts.values()))
    return path


def ssh(lab: Lab, known_hosts: Path, *args: str, timeout: float = 60):
    # ssh keeps the first value of an option: strict before the base args' accept-new.
    argv = ["ssh", "-o", "StrictHostKeyChecking=yes", *lab.ssh_base_args(known_hosts), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_the_fleet_is_20_ordinary_hosts(lab: Lab) -> None:
    assert lab.fleet == FLEET
    assert len(set(FLEET)) == 20
    addresses = [lab.hosts[n].address for n in FLEET]
    assert addresses == [f"10.213.{name[1:]}.2" for name in FLEET]
    assert lab.unreachable_address not in addresses
    for name in FLEET:
        host = lab.hosts[name]
        assert not host.jump_only and host.reach_via is None
        assert host.registry == f"10.213.{name[1:]}.1:5000"
        assert host.docker_socket == f"/var/tmp/occ-lab/{name}/run/docker.sock"
    assert lab.groups["fleet"] == FLEET
    assert lab.groups["fleet-a"] + lab.groups["fleet-b"] == FLEET
    # h3 (jump only) and h4 (bare) are what they were.
    assert lab.hosts["h3"].jump_only and lab.hosts["h3"].reach_via == "h1"
    assert "h3" not in FLEET and "h4" in lab.bare_hosts and "h4" not in lab.hosts


@pytest.mark.parametrize("name", FLEET)
def test_fleet_host_has_its_own_sshd_and_engine(
    lab: Lab, known_hosts: Path, lab_docker, name: str
) -> None:
    host = lab.hosts[name]
    # Its own Engine, straight through its socket on this machine.
    engine = lab_docker(name)
    assert engine.ping()
    assert engine.info()["DockerRootDir"] == host.docker_data_root
    # Its own sshd, with the lab key and the host key lab.json names; the session there
    # sees that same Engine as /var/run/docker.sock.
    r = ssh(lab, known_hosts, f"{lab.user}@{host.address}",
            "docker", "info", "--format", "{{.DockerRootDir}}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == host.docker_data_root
    wrong = subprocess.run(
        ["ssh", *lab.ssh_base_args(known_hosts, lab.keys.unauthorized),
         f"{lab.user}@{host.address}", "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrong.returncode == 255 and "Permission denied" in wrong.stderr


def test_sudo_allows_every_control_verb_on_every_fleet_host(lab: Lab) -> None:
    listed = subprocess.run(["sudo", "-n", "-l"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    control = lab.control_command.split()[-1]
    missing = [
        f"{verb} {name}"
        for verb in lab.raw["control_verbs"]
        for name in [*FLEET, "h3"]
        if not re.search(re.escape(f"{control} {verb} {name}") + r"(?=,|\s|$)", listed.stdout)
    ]
    assert not missing, f"sudo -l lacks {missing}:\n{listed.stdout}"
    assert f"{control} seed-image *" in listed.stdout


def _refused(address: str) -> bool:
    try:
        socket.create_connection((address, 22), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _engine_answers(sock: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in s.recv(256)
    except OSError:
        return False


def test_control_verbs_on_new_fleet_hosts(lab: Lab, known_hosts: Path) -> None:
    h23, h17, h10 = lab.hosts["h23"], lab.hosts["h17"], lab.hosts["h10"]
    try:
        lab.control("cut", "h23")
        assert _refused(h23.address)
        assert _engine_answers(h23.docker_socket)  # a cut is the network path only
        lab.control("sshd-stop", "h10")
        assert _refused(h10.address)
        lab.control("dockerd-stop", "h17")
        assert not _engine_answers(h17.docker_socket)
        # The neighbours are untouched.
        assert _engine_answers(lab.hosts["h16"].docker_socket)
        h22 = lab.hosts["h22"].address
        assert ssh(lab, known_hosts, f"{lab.user}@{h22}", "true").returncode == 0
    finally:
        lab.control("restore", "h23")
        lab.control("sshd-start", "h10")
        lab.control("dockerd-start", "h17")
    assert _engine_answers(h17.docker_socket)
    for host in (h23, h10):
        r = ssh(lab, known_hosts, f"{lab.user}@{host.address}", "true")
        assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def sandbox_image():
    """(ref, image, config): the sandbox image of this checkout's occ (its build inputs'
    labels match, so occ would not rebuild it) on this machine's Engine, under a name of the
    lab test's own. Other checkouts may retag opencode-cloud-sandbox:1.18.33 on the shared
    Engine at any time; this name stays put. An image with matching labels is reused under
    any name (the integration tests build one); only without one is it built (about 70 s)."""
    import docker

    from opencode_cloud.config.model import Config
    from opencode_cloud.image.build import INPUTS_LABEL, build_inputs, ensure_image, image_ref
    from opencode_cloud.output.printer import Printer

    config = Config(
        image=SEED_IMAGE_NAME, extra_ca_certs=CA_BUNDLE if Path(CA_BUNDLE).exists() else None
    )
    ref = image_ref(config)
    client = docker.from_env(timeout=600)
    try:
        digest = build_inputs(config).digest
        matching = client.images.list(filters={"label": f"{INPUTS_LABEL}={digest}"})
        if matching:
            image = matching[0]
            image.tag(*ref.rsplit(":", 1))
        image = ensure_image(client, config, Printer(quiet=True))  # builds only if none
        assert image.labels[INPUTS_LABEL] == digest
        yield ref, image, config
    finally:
        client.close()


def test_seed_image_puts_the_sandbox_image_on_three_hosts(
    lab: Lab, lab_docker, sandbox_image, monkeypatch
) -> None:
    from docker.errors import ImageNotFound

    from opencode_cloud.image import build
    from opencode_cloud.output.printer import Printer

    ref, source, config = sandbox_image
    engines = {name: lab_docker(name) for name in SEEDED}
    # Start from hosts without any sandbox image, so its layers really travel (a pull finds
    # layers it already has, and images built from the same inputs share them). Images that
    # a container there uses belong to another test and stay.
    kept = []
    for name, engine in engines.items():
        with contextlib.suppress(ImageNotFound):
            engine.images.remove(ref)  # our own name
        used = {c.attrs["Image"] for c in engine.containers.list(all=True)}
        for image in engine.images.list(filters={"label": build.INPUTS_LABEL}):
            if image.id in used:
                kept.append(name)
                continue
            with contextlib.suppress(ImageNotFound):
                engine.images.remove(image.id, force=True)  # every name it has there
        with pytest.raises(ImageNotFound):
            engine.images.get(ref)

    result = lab.seed_image(ref, SEEDED)
    print(f"seed {ref} onto {SEEDED}: {result}")
    assert result["id"] == source.id
    assert {n: d["action"] for n, d in result["hosts"].items()} == dict.fromkeys(SEEDED, "pulled")
    # A gigabyte of layers, pulled by three hosts at once: seconds, not milliseconds.
    assert all(d["seconds"] > 2 for n, d in result["hosts"].items() if n not in kept), result

    def no_build(*args, **kwargs):
        raise AssertionError("occ would build the image although the seeded one is there")

    monkeypatch.setattr(build, "build_image", no_build)
    for name, engine in engines.items():
        image = engine.images.get(ref)
        assert image.id == source.id, name
        assert image.labels == source.labels, name
        assert ref in image.tags and not [t for t in image.tags if ":5000/" in t], image.tags
        # What occ itself does before `start` on that host: finds it, builds nothing.
        assert build.ensure_image(engine, config, Printer(quiet=True)).id == source.id

    again = lab.seed_image(ref, SEEDED)
    assert again["id"] == source.id
    assert again["pushed"] is False
    assert {n: d["action"] for n, d in again["hosts"].items()} == dict.fromkeys(SEEDED, "present")
    assert again["seconds"] < 10


def test_seed_image_refuses_what_the_machine_does_not_have(lab: Lab) -> None:
    with pytest.raises(RuntimeError, match="not on this machine's Engine"):
        lab.seed_image("occ-lab-no-such-image:0", ["h5"])
    with pytest.raises(RuntimeError, match="not an image reference"):
        lab.seed_image("--help", ["h5"])
    with pytest.raises(ValueError):
        lab.seed_image("busybox:1", ["h4"])  # the bare host has no Engine to seed


def _banner_round_trip(address: tuple[str, int]) -> float:
    """Seconds for one small request/response: an SSH server sends its key exchange only
    after it has read the client's banner, so client banner out, KEXINIT back is one round
    trip."""
    with socket.create_connection(address, timeout=10) as s:
        s.settimeout(10)
        assert s.recv(256).startswith(b"SSH-2.0-")
        start = time.perf_counter()
        s.sendall(b"SSH-2.0-occlab_fleet\r\n")
        assert s.recv(65536)
        return time.perf_counter() - start


def test_relays_put_every_fleet_host_50_ms_away(lab: Lab, lab_relays) -> None:
    relays = lab_relays(lab.fleet, delay_ms=25)
    assert sorted(relays.ports) == sorted(FLEET)
    assert len(set(relays.ports.values())) == 20
    direct = {n: _banner_round_trip((lab.hosts[n].address, 22)) for n in FLEET}
    delayed = {n: _banner_round_trip(("127.0.0.1", relays.ports[n])) for n in FLEET}
    med_direct = statistics.median(direct.values())
    med_delayed = statistics.median(delayed.values())
    print(f"banner round trip, median of 20 hosts: direct {med_direct * 1000:.1f} ms, "
          f"through the relays {med_delayed * 1000:.1f} ms")  # fmt: skip
    assert med_direct < 0.010
    assert 0.050 <= med_delayed < 0.075
    assert all(t >= 0.050 for t in delayed.values()), delayed
    assert all(relays[n].connections == 1 for n in FLEET)


def test_ssh_through_20_relays_at_once(lab: Lab, lab_relays, known_hosts: Path, tmp_path) -> None:
    relays = lab_relays(lab.fleet, delay_ms=25)
    config = tmp_path / "ssh_config"
    config.write_text(relays.ssh_config(lab.user, lab.keys.plain, known_hosts))

    def login(name: str) -> tuple[str, float, subprocess.CompletedProcess[str]]:
        start = time.monotonic()
        r = subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
             name, "docker", "info", "--format", "{{.DockerRootDir}}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return name, time.monotonic() - start, r

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(login, FLEET))
    for name, elapsed, r in results:
        assert r.returncode == 0, f"{name}: {r.stderr}"
        assert r.stdout.strip() == lab.hosts[name].docker_data_root  # the right host
        assert elapsed >= 0.2, name  # a login is several 50 ms round trips
        assert relays[name].connections == 1 and relays[name].bytes_relayed > 0
