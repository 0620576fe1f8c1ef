"""``occ status`` assembled from a container inspect (service/status.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.service import status
from opencode_cloud.service.context import ServiceContext
from tests.unit.fake_docker import FakeClient, service_context


def running(client: FakeClient, ctx: ServiceContext, **kwargs):
    image = client.images.make("opencode-cloud-sandbox:1.18.33")
    container = client.containers.add(ctx.names.container, image)
    container.kwargs = {"ports": {"3000/tcp": ("127.0.0.1", 3000)}, **kwargs}
    return container


def test_absent_service_reports_the_configured_url(svc: ServiceContext, xdg: Path) -> None:
    report = status.collect_status(svc)
    assert report["state"] == "absent"
    assert report["url"] == "http://127.0.0.1:3000"
    assert report["container"] is report["health"] is report["uptime_seconds"] is None
    assert report["exposure"] == "local-only"
    assert report["config_path"] == str(xdg / "config" / "opencode-cloud" / "config.json")


def test_running_service_uses_dockers_health_verdict_without_an_exec(
        client: FakeClient, svc: ServiceContext, xdg: Path) -> None:
    container = running(client, svc, ports={"3000/tcp": ("0.0.0.0", 3005),
                                             "9090/tcp": ("127.0.0.1", 9095)})
    container.health_log = {"Status": "healthy", "Log": [
        {"ExitCode": 0, "Output": '{"healthy": true, "version": "1.2.3"}\n'}]}
    container.started_at = (datetime.now(UTC) - timedelta(seconds=90)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    report = status.collect_status(svc)
    assert report["state"] == "running"
    assert report["container"] == container.id[:12]
    assert report["image"] == "opencode-cloud-sandbox:1.18.33"
    assert report["ports"] == {"3000/tcp": ("0.0.0.0", 3005), "9090/tcp": ("127.0.0.1", 9095)}
    assert report["url"] == "http://127.0.0.1:3005"  # a wildcard bind is reached on loopback
    assert report["cockpit_url"] == "http://127.0.0.1:9095"
    assert (report["health"], report["opencode_version"]) == ("healthy", "1.2.3")
    assert 89 <= report["uptime_seconds"] <= 150
    assert container.execs == []


def test_without_a_docker_verdict_opencode_itself_is_asked(
        client: FakeClient, svc: ServiceContext, xdg: Path) -> None:
    container = running(client, svc)
    container.exec_answers = [(1, b"connection refused")]
    report = status.collect_status(svc)
    assert (report["health"], report["opencode_version"]) == ("unhealthy", None)
    assert container.execs == [(["/usr/local/bin/occ-entrypoint", "probe", "4"], "opencoder")]


def test_stopped_service_is_not_probed(client: FakeClient, svc: ServiceContext,
                                       xdg: Path) -> None:
    container = running(client, svc, ports={})
    container.status = "exited"
    report = status.collect_status(svc)
    assert report["state"] == "stopped"
    assert report["health"] is None and report["uptime_seconds"] is None
    assert report["ports"] == {} and report["url"] == "http://127.0.0.1:3000"
    assert container.execs == []


def test_network_exposure_and_unpublished_ports(xdg: Path) -> None:
    client = FakeClient()
    ctx = service_context(client, config=Config(bind_address="0.0.0.0"))
    container = running(client, ctx)
    container.status = "exited"
    attrs = container.attrs
    attrs["NetworkSettings"]["Ports"] = {"3000/tcp": None, "9090/tcp": [{"HostPort": "9"}]}
    assert status._ports(attrs) == {"9090/tcp": ("0.0.0.0", 9)}
    assert status.collect_status(ctx)["exposure"] == "network"


def test_seconds_since() -> None:
    assert status._seconds_since(None) is None
    assert status._seconds_since("") is None
    ago = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert 7199 <= status._seconds_since(ago + ".5Z") <= 7260


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0, "0s"), (59, "59s"), (61, "1m 1s"), (3600, "1h 0m"), (3661, "1h 1m"),
    (90000, "1d 1h"),
])
def test_format_duration(seconds: int | None, text: str) -> None:
    assert status.format_duration(seconds) == text
