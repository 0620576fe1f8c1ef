"""Fixtures on the real local Docker Engine: an isolated occ service per test module."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import OccRunner

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # a missing Engine is a failure, never a skip
        pytest.fail(f"these tests need a running Docker Engine (run them with scripts/test): {exc}")
    return client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service(OccRunner):
    """occ with its own config, its own OCC_INSTANCE names and its own ports."""

    def __init__(self, home: Path, client) -> None:
        super().__init__(home)
        self.client = client
        self.instance = f"occtest-{uuid.uuid4().hex[:8]}"
        self.env["OCC_INSTANCE"] = self.instance
        self.port = free_port()
        self("config", "set", "opencode_web_port", str(self.port), check=True)
        if Path(CA_BUNDLE).exists():  # this machine's egress inspects TLS
            self("config", "set", "extra_ca_certs", CA_BUNDLE, check=True)

    @property
    def container_name(self) -> str:
        return f"{self.instance}-sandbox"

    def container(self):
        return self.client.containers.get(self.container_name)

    def credentials(self) -> tuple[str, str]:
        import json

        data = json.loads(self("credentials", "--json", check=True).stdout)
        return data["username"], data["password"]

    def write_workspace_file(self, name: str, text: str) -> None:
        code, out = self.container().exec_run(
            ["sh", "-c", f"printf %s '{text}' > /home/opencoder/workspace/{name}"], user="opencoder"
        )
        assert code == 0, out

    def read_workspace_file(self, name: str) -> str:
        from opencode_cloud.engine.exec_stream import run_collected

        container = self.container()  # docker-py's exec_run can lose a quick output
        code, out = run_collected(container.client.api, container.id,
                                  ["cat", f"/home/opencoder/workspace/{name}"])
        assert code == 0, out
        return out.decode()

    def cleanup(self) -> None:
        from docker.errors import NotFound

        for container in self.client.containers.list(all=True, filters={"name": self.instance}):
            container.remove(force=True)
        for role in ("workspace", "data", "config", "state"):
            with contextlib.suppress(NotFound):
                self.client.volumes.get(f"{self.instance}-{role}").remove(force=True)


@pytest.fixture(scope="module")
def service(tmp_path_factory, docker_client):
    svc = Service(tmp_path_factory.mktemp("occ"), docker_client)
    yield svc
    svc.cleanup()


def untag_repository(client, repository: str) -> None:
    """Remove every tag of ``repository`` (a test's own image name). Tags only: the image
    itself may also be the shared default image under another name."""
    for found in client.images.list(name=repository):
        for tag in found.tags:
            if tag.startswith(repository + ":"):
                with contextlib.suppress(Exception):
                    client.images.remove(tag)


def http_status(url: str, auth: tuple[str, str] | None = None) -> int:
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class LocalRegistry:
    """Debian's docker-registry on a loopback port, run by the test itself."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = root / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            f"http:\n  addr: {self.address}\n"
        )
        self.log = open(root / "registry.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail("docker-registry did not start (is the docker-registry package installed?)")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = LocalRegistry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


def pytest_configure(config):
    os.environ.setdefault("NO_COLOR", "1")
