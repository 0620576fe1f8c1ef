"""start/stop/reset decisions of service/lifecycle.py on the fake Engine."""

from __future__ import annotations

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.errors import OccError
from opencode_cloud.service import lifecycle, spec
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.credentials import login_digest
from opencode_cloud.service.health import NotHealthy
from tests.unit.fake_docker import (
    FakeClient,
    RecordingReporter,
    api_error,
    service_context,
    summary_label,
)

REF = "opencode-cloud-sandbox:1.18.33"


def test_first_start_builds_creates_and_waits(client: FakeClient, svc: ServiceContext,
                                              reporter: RecordingReporter) -> None:
    outcome = lifecycle.start(svc)
    assert outcome.action == "created" and outcome.changes == []
    assert outcome.health.healthy and outcome.health.version == "1.18.33"
    assert outcome.credentials.username == "opencode"
    assert len(client.api.builds) == 1
    [kwargs] = client.containers.created
    assert kwargs["image"] == REF  # the readable tag, not the id
    container = client.containers.get("t1-sandbox")
    assert container.status == "running"
    assert f"OPENCODE_SERVER_PASSWORD={outcome.credentials.password}" in kwargs["environment"]
    assert summary_label(container) == spec.settings_summary(
        svc.config, client.images.get(REF).id, False, login_digest(outcome.credentials))
    assert reporter.of("step")[-1] == "Waiting for opencode to answer"


def test_start_is_idempotent_and_starts_a_stopped_container(client: FakeClient,
                                                             svc: ServiceContext) -> None:
    lifecycle.start(svc)
    again = lifecycle.start(svc)
    assert again.action == "already-running"
    assert len(client.containers.created) == 1 and len(client.api.builds) == 1
    container = client.containers.get("t1-sandbox")
    container.stop()
    started = lifecycle.start(svc)
    assert started.action == "started" and container.status == "running"
    assert client.calls.count(("start", "t1-sandbox")) == 2
    assert len(client.containers.created) == 1


def test_changed_settings_recreate_the_container_and_keep_volumes(client: FakeClient) -> None:
    reporter = RecordingReporter()
    lifecycle.start(service_context(client, reporter=reporter))
    old = client.containers.get("t1-sandbox")
    ctx = service_context(client, Config(opencode_web_port=3111, memory_limit="2g"),
                          reporter)
    outcome = lifecycle.start(ctx)
    assert outcome.action == "recreated"
    assert outcome.changes == ["opencode_web_port 3000 -> 3111", "memory_limit 4g -> 2g"]
    assert reporter.of("info") == [
        "Settings changed (opencode_web_port 3000 -> 3111, memory_limit 4g -> 2g): "
        "recreating the container; volumes are kept."]
    # kept aside until the new one was healthy, then removed (service/switch.py)
    assert ("remove", "t1-sandbox-replaced", True) in client.calls and old.removed
    assert client.containers.get("t1-sandbox") is not old
    # the four volumes kept; only the switch's marker came and went
    assert client.volumes.removed == ["t1-operation"]
    assert sorted(client.volumes.created) == ["t1-config", "t1-data", "t1-operation",
                                              "t1-state", "t1-workspace"]
    assert "t1-operation" not in client.volumes.by_name
    assert client.containers.created[-1]["ports"] == {"3000/tcp": ("127.0.0.1", 3111)}


def test_a_container_without_occs_label_is_recreated(client: FakeClient,
                                                     svc: ServiceContext) -> None:
    client.containers.add("t1-sandbox", client.images.make("other:1"), labels=None)
    outcome = lifecycle.start(svc)
    assert outcome.action == "recreated" and "image changed" in outcome.changes


def test_a_rolled_back_service_keeps_its_image(client: FakeClient, svc: ServiceContext) -> None:
    old = client.images.make("opencode-cloud-sandbox:occ-previous")
    lifecycle.start(svc, image=old, rolled_back=True)
    container = client.containers.get("t1-sandbox")
    assert lifecycle.is_rolled_back(container)
    assert lifecycle.running_summary(container)["image"] == old.id
    container.stop()
    outcome = lifecycle.start(svc)
    assert outcome.action == "started" and client.api.builds == []
    assert client.containers.get("t1-sandbox").image is old


def test_a_container_that_exits_at_once_fails_the_start(client: FakeClient,
                                                        svc: ServiceContext) -> None:
    client.containers.on_create = lambda c: setattr(c, "stop_after_start", True)
    with pytest.raises(NotHealthy, match=r"stopped \(exit code 1\)"):
        lifecycle.start(svc)


@pytest.mark.parametrize("text", [
    "driver failed programming external connectivity: Bind for 127.0.0.1:3000 failed: "
    "port is already allocated",
    "listen tcp4 127.0.0.1:3000: bind: address already in use",
])
def test_a_taken_port_names_a_free_one_where_ports_can_be_tried(client: FakeClient,
                                                                text: str) -> None:
    tried = []

    def free_port_near(address: str, first: int) -> int:
        tried.append((address, first))
        return 3002

    ctx = service_context(client, free_port_near=free_port_near)
    client.containers.on_create = lambda c: setattr(c, "start_error", api_error(text))
    with pytest.raises(OccError) as e:
        lifecycle.start(ctx)
    assert e.value.message == "port 3000 on 127.0.0.1 is already in use on this machine"
    assert e.value.hint == ("Port 3002 is free: occ config set opencode_web_port 3002, then "
                            "occ start (or: occ start --port 3002).")
    assert tried == [("127.0.0.1", 3001)]
    assert client.containers.by_name == {}  # the container that could not start is gone


def test_a_taken_port_on_a_host_lets_the_person_choose(client: FakeClient) -> None:
    config = Config(cockpit_enabled=True, cockpit_port=9191)
    ctx = service_context(client, config, host="web1")
    error = api_error("Bind for 127.0.0.1:9191 failed: port is already allocated")
    client.containers.on_create = lambda c: setattr(c, "start_error", error)
    with pytest.raises(OccError) as e:
        lifecycle.start(ctx)
    assert e.value.message == "port 9191 on 127.0.0.1 is already in use on web1"
    assert e.value.hint == "Choose another port: occ config set cockpit_port PORT, then occ start."


def test_a_port_finder_that_finds_nothing(client: FakeClient) -> None:
    ctx = service_context(client, free_port_near=lambda address, first: None)
    error = lifecycle.port_in_use_error(ctx, "port is already allocated")
    assert error.hint.startswith("Choose another port: occ config set opencode_web_port PORT")


def test_other_start_failures_are_reported_as_they_are(client: FakeClient,
                                                       svc: ServiceContext) -> None:
    client.containers.on_create = lambda c: setattr(
        c, "start_error", api_error("OCI runtime create failed: no memory"))
    with pytest.raises(OccError, match="^the container could not start: OCI runtime create "
                                       "failed: no memory$"):
        lifecycle.start(svc)
    assert client.containers.by_name == {}


def test_stop(client: FakeClient, svc: ServiceContext) -> None:
    assert lifecycle.stop(svc) is False
    container = client.containers.add("t1-sandbox", client.images.make("i:1"), status="exited")
    assert lifecycle.stop(svc) is False
    container.status = "running"
    assert lifecycle.stop(svc, timeout=5) is True
    assert client.calls == [("stop", "t1-sandbox", 5)]


def test_reset_removes_the_container_and_only_with_volumes_the_volumes(
        client: FakeClient, svc: ServiceContext) -> None:
    assert lifecycle.reset(svc, volumes=False) == []
    lifecycle.start(svc)
    assert lifecycle.reset(svc, volumes=False) == ["container t1-sandbox"]
    assert client.volumes.removed == []
    lifecycle.start(svc)
    client.volumes.get("t1-config").remove()
    assert lifecycle.reset(svc, volumes=True) == [
        "container t1-sandbox", "volume t1-workspace", "volume t1-data", "volume t1-state"]
    assert client.volumes.by_name == {}


def test_removing_a_container_that_is_already_gone_is_fine(client: FakeClient) -> None:
    container = client.containers.add("t1-sandbox", client.images.make("i:1"))
    lifecycle.remove_container(container)
    lifecycle.remove_container(container)
    assert client.calls.count(("remove", "t1-sandbox", True)) == 2
