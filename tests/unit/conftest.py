"""Fixtures of the Docker-free core tests: a fake client, a recording reporter, a context."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencode_cloud.service.context import ServiceContext
from tests.conftest import OccRunner
from tests.unit.fake_docker import FakeClient, FakeConnection, RecordingReporter, service_context


@pytest.fixture
def occ(tmp_path: Path) -> OccRunner:
    """The real CLI with private folders, each call in a forked child (no new interpreter)."""
    return OccRunner(tmp_path, forked=True)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def svc(client: FakeClient, reporter: RecordingReporter) -> ServiceContext:
    """A ServiceContext on the fake Engine with default settings and instance ``t1``."""
    return service_context(client, reporter=reporter)


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private config and data folders (occ's files land under ``tmp_path``)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def fake_ssh(monkeypatch: pytest.MonkeyPatch, xdg: Path) -> list[FakeConnection]:
    """RemoteEngine's HostConnection becomes a FakeConnection; the list holds those made."""
    from opencode_cloud.ssh import connection

    made: list[FakeConnection] = []

    def make(host, reporter=None, **kwargs):
        made.append(FakeConnection(host, reporter, **kwargs))
        return made[-1]

    monkeypatch.setattr(connection, "HostConnection", make)
    return made
