"""Replacing the container so that a host always keeps a service: the marker, the steps,
and what recover() makes of a switch cut off at each step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opencode_cloud.service import lifecycle, switch
from tests.unit.fake_docker import FakeClient, RecordingReporter, service_context

pytestmark = pytest.mark.unit


def test_marker_labels_and_what_they_say() -> None:
    labels = switch.marker_labels("update", True, datetime(2026, 12, 2, 7, 30, tzinfo=UTC),
                                  "occ on laptop (pid 7)")
    pending = switch.pending_from({"Labels": labels}, "exited", None)
    assert pending == switch.Pending("update", "2026-12-02T07:30:00Z",
                                     "occ on laptop (pid 7)", switch.OLD_STOPPED)
    assert pending.describe() == ("'occ update', started 2026-12-02T07:30:00Z by occ on laptop "
                                  "(pid 7), has not finished (the old container was stopped, "
                                  "no new one yet)")
    assert switch.pending_from(None) is None
    assert switch.pending_from({"Labels": {"other": "x"}}) is None


@pytest.mark.parametrize(("replaced", "current", "step"), [
    (None, "running", switch.IMAGE_READY),
    ("exited", None, switch.OLD_STOPPED),
    ("exited", "created", switch.NEW_CREATED),
    ("exited", "running", switch.NEW_STARTED),
])
def test_the_step_comes_from_the_containers(replaced, current, step) -> None:
    assert switch.step_reached(replaced, current) == step


class Cut(BaseException):
    """occ ended at a checkpoint, as SIGTERM ends it (SystemExit: no clean-up of the
    switch runs, only `finally` blocks); SIGKILL or a dropped connection leave even less."""


class CuttingReporter(RecordingReporter):
    def __init__(self, at: str) -> None:
        super().__init__()
        self.at = at

    def checkpoint(self, name: str) -> None:
        super().checkpoint(name)
        if name == self.at:
            raise Cut(name)


def started(client: FakeClient, **config):
    """A running service made by start() with ``config``; returns its container."""
    from opencode_cloud.config.model import Config

    ctx = service_context(client, Config(**config))
    ctx.client.images.make("opencode-cloud-sandbox:1.18.33")
    lifecycle.start(ctx)
    return ctx.container()


@pytest.mark.parametrize("step", [switch.IMAGE_READY, switch.OLD_STOPPED,
                                  switch.NEW_CREATED, switch.NEW_STARTED])
def test_a_start_cut_at_each_step_is_mended_by_the_next_one(client: FakeClient, step) -> None:
    from opencode_cloud.config.model import Config

    old = started(client)
    # A start that must recreate (a new port), cut off at the step.
    cut = service_context(client, Config(opencode_web_port=3111), CuttingReporter(step))
    with pytest.raises(Cut):
        lifecycle.start(cut)
    # The marker tells any machine, unless nothing had changed yet (then it went at once).
    assert ("t1-operation" in client.volumes.by_name) == (step != switch.IMAGE_READY)

    # The next command (from anywhere) finds it, says so, and ends with one service.
    reporter = RecordingReporter()
    nxt = service_context(client, Config(opencode_web_port=3111), reporter)
    outcome = lifecycle.start(nxt)
    warnings = [w for w in reporter.of("warn") if "has not finished" in w]
    if step == switch.IMAGE_READY:
        assert warnings == []
    else:
        (warning,) = warnings
        assert "'occ start', started" in warning
        assert ("finished by removing the old one" if step == switch.NEW_STARTED
                else "rolled back to the container it replaced") in warning
    assert outcome.health is not None
    assert sorted(client.containers.by_name) == ["t1-sandbox"]  # nothing leaked
    assert client.containers.by_name["t1-sandbox"].status == "running"
    assert "t1-operation" not in client.volumes.by_name
    assert old.removed or client.containers.by_name["t1-sandbox"] is old


def test_a_failed_create_brings_the_old_container_back(client: FakeClient) -> None:
    from opencode_cloud.config.model import Config

    old = started(client)
    ctx = service_context(client, Config(opencode_web_port=3111))

    def refuse(container):
        from tests.unit.fake_docker import api_error

        container.start_error = api_error("driver failed: something else")

    client.containers.on_create = refuse
    with pytest.raises(Exception, match="could not start"):
        lifecycle.start(ctx)
    assert client.containers.by_name == {"t1-sandbox": old} and old.status == "running"
    assert "t1-operation" not in client.volumes.by_name


def test_a_container_in_a_restart_loop_is_stopped_before_it_is_put_aside(
        client: FakeClient) -> None:
    """Docker refuses to rename it between two restarts ("sandbox ... not found"), which
    left a host whose update had failed unable to start again."""
    from opencode_cloud.config.model import Config

    broken = started(client)
    broken.status = "restarting"
    outcome = lifecycle.start(service_context(client, Config(opencode_web_port=3111)))
    assert outcome.action == "recreated" and outcome.health.healthy
    assert ("stop", "t1-sandbox", 30) in client.calls and broken.removed
    assert sorted(client.containers.by_name) == ["t1-sandbox"]


def test_reset_removes_what_a_cut_off_left(client: FakeClient) -> None:
    from opencode_cloud.config.model import Config

    started(client)
    cut = service_context(client, Config(opencode_web_port=3111),
                          CuttingReporter(switch.NEW_CREATED))
    with pytest.raises(Cut):
        lifecycle.start(cut)
    removed = lifecycle.reset(service_context(client), volumes=False)
    assert "container t1-sandbox-replaced" in removed
    assert client.containers.by_name == {} and "t1-operation" not in client.volumes.by_name
