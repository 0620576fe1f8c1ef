"""Running occ against the lab: an isolated environment per test and the check that no
ssh process of occ outlives a command but the master connections.

Every test gets its own config, hosts.json, known_hosts, control folder and no ssh-agent,
and runs occ as a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import INTERRUPTIBLE

if TYPE_CHECKING:
    from conftest import Lab


def ssh_processes(control_dir: Path) -> list[tuple[int, list[str]]]:
    """Every ssh process whose command line names this test's control folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "ssh" and any(
                str(control_dir) in a for a in argv):
            found.append((int(entry.name), argv))
    return found


@dataclass
class OccRun:
    env: dict[str, str]
    tmp: Path
    control_dir: Path
    known_hosts: Path
    hosts_file: Path
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, *args: str, timeout: float = 120,
                 check_processes: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        r = subprocess.run([sys.executable, "-m", "opencode_cloud", *args], env=self.env,
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, start_new_session=True)
        if check_processes:
            self.assert_only_masters()
        return r

    def popen(self, *args: str, **kwargs) -> subprocess.Popen[str]:
        """occ in the background, ready for tests.conftest.send_ctrl_c()."""
        return subprocess.Popen([sys.executable, "-m", "opencode_cloud", *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, **{**INTERRUPTIBLE, **kwargs})

    def hosts(self) -> dict:
        return json.loads(self.hosts_file.read_text()) if self.hosts_file.exists() else {}

    def knows_key_of(self, address: str) -> bool:
        """Is there a key for ``address`` in occ's known_hosts? (Debian hashes the names.)"""
        r = subprocess.run(["ssh-keygen", "-F", address, "-f", str(self.known_hosts)],
                           capture_output=True, timeout=30)
        return r.returncode == 0 and bool(r.stdout.strip())

    def masters(self) -> dict[int, list[str]]:
        return {pid: argv for pid, argv in ssh_processes(self.control_dir)
                if "ControlMaster=yes" in argv}

    def assert_only_masters(self) -> None:
        """Only masters (and, for jump hosts, their `ssh -W` hop) may outlive a command."""
        deadline = time.monotonic() + 5
        while True:
            procs = ssh_processes(self.control_dir)
            others = [(pid, argv) for pid, argv in procs
                      if "ControlMaster=yes" not in argv and "-W" not in argv]
            hops = [pid for pid, argv in procs if "-W" in argv]
            if not others and (not hops or self.masters()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"ssh processes left behind: {others or hops}")
            time.sleep(0.1)

    def assert_no_ssh(self) -> None:
        deadline = time.monotonic() + 5
        while ssh_processes(self.control_dir):
            if time.monotonic() > deadline:
                raise AssertionError(f"ssh left: {ssh_processes(self.control_dir)}")
            time.sleep(0.1)


@contextlib.contextmanager
def isolated_occ(tmp: Path) -> Iterator[OccRun]:
    """An OccRun in ``tmp``; afterwards every master is closed and no ssh process is left."""
    control = Path(tempfile.mkdtemp(prefix="occl", dir="/tmp"))  # short: unix socket paths
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OCC_", "XDG_", "SSH_AUTH_SOCK", "SSH_AGENT"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
        OCC_SSH_CONFIG="none", OCC_SSH_KNOWN_HOSTS=str(tmp / "known_hosts"),
        OCC_SSH_CONTROL_DIR=str(control), OCC_SSH_CONTROL_PERSIST="5m",
    )
    run = OccRun(env, tmp, control, tmp / "known_hosts",
                 tmp / "config" / "opencode-cloud" / "hosts.json")
    yield run
    if run.hosts_file.exists():
        subprocess.run([sys.executable, "-m", "opencode_cloud", "host", "disconnect", "--all"],
                       env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    leftovers = ssh_processes(control)
    for pid, _argv in leftovers:  # started by this test: end them by pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    shutil.rmtree(control, ignore_errors=True)
    assert not leftovers, f"ssh processes survived 'host disconnect --all': {leftovers}"


@pytest.fixture
def occ(tmp_path: Path, lab: Lab) -> Iterator[OccRun]:
    with isolated_occ(tmp_path) as run:
        yield run


def build_sandbox_here(tmp: Path) -> None:
    """The sandbox image on this machine's Engine, built (or found up to date) with the
    settings the lab tests give their hosts, so that an image seeded onto a host is the one
    occ there would build, and nothing is built on the hosts."""
    import uuid

    ca_bundle = "/etc/ssl/certs/ca-certificates.crt"
    with isolated_occ(tmp) as builder:
        if Path(ca_bundle).exists():
            assert builder("config", "set", "extra_ca_certs", ca_bundle).returncode == 0
        builder.env["OCC_INSTANCE"] = f"occbuild-{uuid.uuid4().hex[:6]}"
        started = builder("start", "--local", timeout=900)
        builder("reset", "--volumes", "--force", "--local", timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr


SANDBOX = "opencode-cloud-sandbox:1.18.33"


@contextlib.contextmanager
def published_versions(lab: Lab, name: str, versions: tuple[str, ...], extra_mib: int = 1
                       ) -> Iterator[dict[str, str]]:
    """Distinct sandbox images in the lab registry as ``REGISTRY/name:VERSION``, without an
    npm build each: small images FROM the sandbox image built here, each with its own
    opencode-version label and a file of (n * extra_mib) MiB. Yields {version: image id};
    afterwards the tags here are removed (the registry keeps its few MiB)."""
    import io

    import docker
    from docker.errors import APIError, NotFound

    from opencode_cloud.image.build import OPENCODE_VERSION_LABEL

    local = docker.from_env()
    ids, refs = {}, []
    try:
        for n, version in enumerate(versions, 1):
            ref = f"{lab.registry.local}/{name}:{version}"
            dockerfile = (f"FROM {SANDBOX}\nLABEL {OPENCODE_VERSION_LABEL}={version}\n"
                          f"RUN head -c {n * extra_mib * 2**20} /dev/urandom "
                          "> /var/tmp/occ-disk-test\n")
            image, _ = local.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref,
                                          rm=True, pull=False)
            refs.append(ref)
            for line in local.images.push(ref, stream=True, decode=True):
                assert "error" not in line, line
            ids[version] = image.id
        yield ids
    finally:
        for ref in refs:
            with contextlib.suppress(NotFound, APIError):
                local.images.remove(ref)
        local.close()


def stopped(pid: int) -> bool:
    """Is the process frozen (SIGSTOP, state T)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def cut_at(run: OccRun, step: str, *args: str, timeout: float = 300) -> None:
    """Run occ ``args`` until it has done ``step`` (OCC_TEST_STOP_AT: it freezes itself
    there), then kill its SSH master, as a dropped connection would, and occ itself."""
    run.env["OCC_TEST_STOP_AT"] = step
    try:
        proc = run.popen(*args)
    finally:
        del run.env["OCC_TEST_STOP_AT"]
    deadline = time.monotonic() + timeout
    while not stopped(proc.pid):
        if proc.poll() is not None:
            raise AssertionError(f"occ ended before {step}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"occ never reached {step}"
        time.sleep(0.05)
    for pid, _argv in ssh_processes(run.control_dir):  # the master: the connection drops
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """The result of an occ run that must have succeeded (its output in the failure)."""
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def occ_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "opencode_cloud", *args]
