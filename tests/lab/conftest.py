"""The lab of remote hosts (scripts/lab), as pytest fixtures.

Everything under tests/lab is marked ``lab``. The session fixture ``lab`` reads
/var/tmp/occ-lab/lab.json and checks that h1's sshd and dockerd answer; when the lab is
not up the tests FAIL (never skip) and say how to bring it up.

    def test_something(lab, lab_docker):
        h1 = lab.hosts["h1"]                   # .address .port .docker_socket .jump_only ...
        lab.keys.plain                         # ~ an authorized ed25519 key, no passphrase
        lab_docker("h1").containers.list()     # h1's own engine, through its socket
        lab.control("cut", "h2")               # sudo -n /usr/local/lib/occ-lab/lab cut h2

    def test_fleet(lab, lab_relays):
        lab.fleet                              # the 20 ordinary hosts: ["h1", "h2", "h5", ...]
        lab.groups["fleet-a"]                  # suggested groups: fleet, fleet-a, fleet-b
        lab.seed_image("opencode-cloud-sandbox:1.18.33", ["h5", "h6", "h7"])
        relays = lab_relays(lab.fleet, delay_ms=25)   # one RelayGroup, 50 ms round trips
        relays.ports["h5"]; relays.ssh_config(lab.user, lab.keys.plain, known_hosts)

    def test_install(lab):
        h4 = lab.bare_hosts["h4"]              # a bare Debian: SSH and sudo, no Docker
        lab.control("reset", "h4")             # back to the pristine rootfs
        lab.bare_docker_state("h4")            # {"installed", "running", "docker_group", ...}
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lab_occ import occ  # noqa: F401  (the isolated occ runner, a fixture for every lab test)

if TYPE_CHECKING:
    import docker

try:  # tests/lab is a plain folder (rootdir-relative imports) unless someone makes it a package
    from .lab_relay import DelayRelay, RelayGroup
except ImportError:
    from lab_relay import DelayRelay, RelayGroup  # type: ignore[no-redef]

LAB_JSON = Path("/var/tmp/occ-lab/lab.json")
HERE = Path(__file__).resolve().parent
HOW_TO_START = (
    "Run the whole suite with `scripts/test` (as root; it brings the lab up), or bring the "
    "lab up yourself with `sudo scripts/lab up --user $USER`."
)
CONTROL_VERBS = ("sshd-stop", "sshd-start", "dockerd-stop", "dockerd-start", "cut", "restore")
BARE_VERBS = ("reset", "service-docker-stop", "docker-state")


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    port: int
    gateway: str
    netns: str
    docker_socket: str
    docker_host: str  # unix://… for the Docker SDK or DOCKER_HOST
    docker_data_root: str
    registry: str  # the lab registry as this host reaches it (ADDR:5000)
    host_key_pub: str
    known_hosts_line: str  # "ADDRESS ssh-ed25519 AAAA…", for a UserKnownHostsFile
    jump_only: bool
    reach_via: str | None


@dataclass(frozen=True)
class LabBareHost:
    """A host with its own root filesystem and accounts and no Docker (scripts/lab h4)."""

    name: str
    address: str
    port: int
    gateway: str
    netns: str
    registry: str  # the lab registry as its Engine (once installed) reaches it
    rootfs: str
    known_hosts_line: str
    os: str  # "Debian GNU/Linux 12 (bookworm)"
    sudo_user: str  # passwordless sudo (the lab's user, whose keys are authorized)
    sudo_password_user: str  # sudo asks this account's password
    sudo_password: str


@dataclass(frozen=True)
class LabKeys:
    plain: str  # authorized, no passphrase
    passphrase: str  # authorized, protected by passphrase_text
    passphrase_text: str
    unauthorized: str  # a valid key that no host accepts


@dataclass(frozen=True)
class LabRegistry:
    local: str  # 127.0.0.1:5000, as the machine reaches it
    from_hosts: dict[str, str]  # host name -> 10.213.N.1:5000, as that host's engine reaches it
    base_image: str  # 127.0.0.1:5000/library/debian:bookworm-slim


@dataclass(frozen=True)
class Lab:
    user: str
    nodocker_user: str  # may log in, is not in group docker
    hosts: dict[str, LabHost]
    keys: LabKeys
    registry: LabRegistry
    unreachable_address: str  # in the lab subnet, routed, nothing listens: refused at once
    base_image: str
    control_command: str  # "sudo -n /usr/local/lib/occ-lab/lab"
    raw: dict[str, Any]
    bare_hosts: dict[str, LabBareHost]
    fleet: list[str]  # the 20 ordinary hosts (h1, h2, h5-h8, h10-h23), in order
    groups: dict[str, list[str]]  # suggested groups of fleet hosts: fleet, fleet-a, fleet-b

    def control(self, verb: str, name: str, timeout: float = 120) -> str:
        """Runs a control verb on a lab host (through sudo); raises when it fails."""
        bare = name in self.bare_hosts
        verbs = BARE_VERBS if bare else CONTROL_VERBS
        if verb not in verbs:
            raise ValueError(f"unknown lab control verb {verb!r} for {name} (one of {verbs})")
        if name not in self.hosts and not bare:
            raise ValueError(f"unknown lab host {name!r} (one of "
                             f"{sorted([*self.hosts, *self.bare_hosts])})")
        argv = [*shlex.split(self.control_command), verb, name]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"`{shlex.join(argv)}` failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def seed_image(self, ref: str, names: Iterable[str], timeout: float = 900) -> dict[str, Any]:
        """Puts REF, an image of this machine's own Engine (e.g. the sandbox image occ built
        here), on the hosts NAMES with the same tag, image ID and labels, so occ there finds
        it and builds nothing. Pushed to the lab registry once, pulled by the hosts at the
        same time (``scripts/lab seed-image``, through sudo). Returns what it did:
        ``{"ref", "id", "pushed", "push_seconds", "seconds",
        "hosts": {name: {"action": "pulled"|"present", "seconds"}}}``."""
        names = list(names)
        unknown = [n for n in names if n not in self.hosts]
        if unknown or not names:
            raise ValueError(f"seed_image needs lab hosts, one of {sorted(self.hosts)}: {names}")
        verb = self.raw.get("seed_verb", "seed-image")
        argv = [*shlex.split(self.control_command), verb, "--json", "--", ref, *names]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"`{shlex.join(argv)}` failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return json.loads(result.stdout.strip().splitlines()[-1])

    def bare_docker_state(self, name: str) -> dict[str, Any]:
        """What a bare host has of Docker, seen from outside it: ``installed`` (dockerd is
        there), ``running`` (its Engine answers), ``docker_group`` (the group's members)."""
        return json.loads(self.control("docker-state", name))

    def ssh_base_args(self, known_hosts: str | Path, key: str | None = None) -> list[str]:
        """Options for a plain `ssh` that touches nothing of the user's own ~/.ssh."""
        return [
            "-F", "/dev/null",
            "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", "IdentitiesOnly=yes",
            "-i", key or self.keys.plain,
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=10",
        ]  # fmt: skip


def load_lab(path: Path = LAB_JSON) -> Lab:
    data = json.loads(path.read_text())
    host_fields = LabHost.__dataclass_fields__
    return Lab(
        user=data["user"],
        nodocker_user=data["nodocker_user"],
        hosts={
            name: LabHost(**{k: v for k, v in h.items() if k in host_fields})
            for name, h in data["hosts"].items()
        },
        keys=LabKeys(**data["keys"]),
        registry=LabRegistry(**data["registry"]),
        unreachable_address=data["unreachable_address"],
        base_image=data["base_image"],
        control_command=data["control"],
        raw=data,
        bare_hosts={
            name: LabBareHost(**{k: v for k, v in h.items()
                                 if k in LabBareHost.__dataclass_fields__})
            for name, h in data.get("bare_hosts", {}).items()
        },
        fleet=list(data.get("fleet", [])),
        groups={name: list(members) for name, members in data.get("groups", {}).items()},
    )


def _sshd_answers(address: str, port: int, timeout: float = 5) -> str | None:
    """None when an SSH server greets us, else what went wrong."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            banner = s.recv(256)
    except OSError as e:
        return f"{address}:{port}: {e}"
    return None if banner.startswith(b"SSH-") else f"{address}:{port} sent {banner!r}"


def _docker_answers(sock: str, timeout: float = 5) -> str | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = s.recv(256)
    except OSError as e:
        return f"{sock}: {e}"
    return None if b" 200 " in reply.split(b"\r\n", 1)[0] else f"{sock} answered {reply[:60]!r}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items: mark only those under tests/lab.
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab() -> Lab:
    if not LAB_JSON.exists():
        pytest.fail(f"The lab is not up: {LAB_JSON} is missing. {HOW_TO_START}", pytrace=False)
    try:
        result = load_lab()
    except (OSError, ValueError, KeyError, TypeError) as e:
        pytest.fail(f"The lab's {LAB_JSON} cannot be read ({e}). {HOW_TO_START}", pytrace=False)
    h1 = result.hosts["h1"]
    problems = [
        p for p in (_sshd_answers(h1.address, h1.port), _docker_answers(h1.docker_socket)) if p
    ]
    if problems:
        pytest.fail(
            f"The lab is not up: h1 does not answer ({'; '.join(problems)}). {HOW_TO_START}",
            pytrace=False,
        )
    return result


@pytest.fixture
def lab_docker(lab: Lab) -> Iterator[Callable[[str], docker.DockerClient]]:
    """A factory: lab_docker("h1") is a Docker SDK client for h1's own engine (its socket on
    this machine, not through SSH). Clients are closed after the test."""
    import docker  # imported lazily: it costs 200 ms

    clients: list[docker.DockerClient] = []

    def make(name: str) -> docker.DockerClient:
        client = docker.DockerClient(base_url=lab.hosts[name].docker_host, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def lab_relay() -> Iterator[Callable[..., DelayRelay]]:
    """A factory for delaying TCP relays, stopped after the test:
    relay = lab_relay(("10.213.1.2", 22), delay_ms=25); then connect to 127.0.0.1:relay.port."""
    relays: list[DelayRelay] = []

    def make(target: tuple[str, int], delay_ms: float = 25) -> DelayRelay:
        relay = DelayRelay(target=target, delay_ms=delay_ms).start()
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.stop()


@pytest.fixture
def lab_relays(lab: Lab) -> Iterator[Callable[..., RelayGroup]]:
    """A factory for groups of delaying relays (one thread, one listener per host), stopped
    after the test: relays = lab_relays(lab.fleet, delay_ms=25); then 127.0.0.1 and
    relays.ports["h5"] reach h5's sshd with a 50 ms round trip. relays.ssh_config(...)
    writes the matching ``Host NAME`` blocks."""
    groups: list[RelayGroup] = []

    def make(names: Iterable[str] | None = None, delay_ms: float = 25) -> RelayGroup:
        chosen = list(lab.fleet if names is None else names)
        unknown = [n for n in chosen if n not in lab.hosts or lab.hosts[n].jump_only]
        if unknown:
            raise ValueError(f"not directly reachable lab hosts: {unknown}")
        targets = {n: (lab.hosts[n].address, lab.hosts[n].port) for n in chosen}
        group = RelayGroup(targets, delay_ms).start()
        groups.append(group)
        return group

    yield make
    for group in groups:
        group.stop()
