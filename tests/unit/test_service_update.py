"""occ update and occ update --rollback (service/update.py) on the fake Engine."""

from __future__ import annotations

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.errors import OccError
from opencode_cloud.image.build import OPENCODE_VERSION_LABEL
from opencode_cloud.service import lifecycle, update
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.health import NotHealthy
from tests.unit.fake_docker import FakeClient, RecordingReporter, service_context

PREVIOUS = "opencode-cloud-sandbox:occ-previous"


@pytest.mark.parametrize(("ref", "repo"), [
    ("opencode-cloud-sandbox:1.18.33", "opencode-cloud-sandbox"),
    ("registry.example:5000/team/sandbox:1.0.0", "registry.example:5000/team/sandbox"),
    ("registry.example:5000/sandbox", "registry.example:5000/sandbox"),
    ("sandbox@sha256:abcd", "sandbox"),
    ("sandbox", "sandbox"),
])
def test_repository(ref: str, repo: str) -> None:
    assert update.repository(ref) == repo


def test_previous_ref_and_describe(client: FakeClient) -> None:
    ctx = service_context(client, Config(image="ghcr.io/x/box", opencode_version="2.0.0"))
    assert update.previous_ref(ctx) == "ghcr.io/x/box:occ-previous"
    labelled = client.images.make("box:2", labels={OPENCODE_VERSION_LABEL: "2.0.0"})
    assert update.describe(labelled) == "box:2 (opencode 2.0.0)"
    untagged = client.images.make("tmp")
    untagged.tags = []
    assert update.describe(untagged) == untagged.short_id


def running_on_old_image(client: FakeClient, svc: ServiceContext):
    old = client.images.make("opencode-cloud-sandbox:1.18.32",
                             labels={OPENCODE_VERSION_LABEL: "1.18.32"})
    lifecycle.start(svc, image=old)
    return old


def test_an_update_to_a_healthy_image(client: FakeClient, svc: ServiceContext) -> None:
    old = running_on_old_image(client, svc)
    container, new = update.plan_update(svc)
    assert container.image is old and new is not old and len(client.api.builds) == 1
    assert update.needs_update(container, new)
    outcome = update.apply_update(svc, container, new, timeout=10)
    assert outcome.action == "updated"
    assert outcome.image == "opencode-cloud-sandbox:1.18.33 (opencode 1.18.33)"
    assert outcome.opencode_version == "1.18.33"
    assert outcome.start.action == "recreated"
    assert client.images.get(PREVIOUS) is old  # kept for a rollback
    assert client.containers.get("t1-sandbox").image is new
    current = client.containers.get("t1-sandbox")
    assert not update.needs_update(current, new)
    assert update.needs_update(None, new)


def test_a_new_image_that_fails_rolls_back_to_the_old_one(client: FakeClient,
                                                          reporter: RecordingReporter,
                                                          svc: ServiceContext) -> None:
    old = running_on_old_image(client, svc)
    container, new = update.plan_update(svc)
    client.containers.on_create = lambda c: setattr(c, "stop_after_start", c.image is new)
    with pytest.raises(update.UpdateRolledBack) as e:
        update.apply_update(svc, container, new, timeout=10)
    assert e.value.message == ("update failed; rolled back to opencode-cloud-sandbox:1.18.32 "
                               "(opencode 1.18.32), which is healthy again")
    assert e.value.hint.startswith("Its last log lines:")
    assert reporter.of("warn") == ["the new image did not become healthy: the container "
                                   "stopped (exit code 1) before opencode answered"]
    assert reporter.of("info")[-3:] == [
        "Settings changed (image changed): recreating the container; volumes are kept.",
        "Rolling back to opencode-cloud-sandbox:1.18.32 (opencode 1.18.32)...",
        "Settings changed (image changed, pinned_image False -> True): recreating the "
        "container; volumes are kept.",
    ]
    back = client.containers.get("t1-sandbox")
    assert back.image is old and back.status == "running"
    assert lifecycle.is_rolled_back(back)  # pinned until the next update
    assert update.needs_update(back, old)


def test_a_failing_first_install_is_not_rolled_back(client: FakeClient,
                                                    svc: ServiceContext) -> None:
    container, new = update.plan_update(svc)
    assert container is None
    client.containers.on_create = lambda c: setattr(c, "stop_after_start", True)
    with pytest.raises(NotHealthy):
        update.apply_update(svc, container, new, timeout=10)
    assert ("tag",) not in [call[:1] for call in client.calls]


def test_rollback_and_forward_again(client: FakeClient, svc: ServiceContext) -> None:
    old = running_on_old_image(client, svc)
    container, new = update.plan_update(svc)
    update.apply_update(svc, container, new, timeout=10)
    outcome = update.rollback(svc, timeout=10)
    assert outcome.action == "rolled-back"
    assert outcome.image == update.describe(old)
    assert client.containers.get("t1-sandbox").image is old
    assert lifecycle.is_rolled_back(client.containers.get("t1-sandbox"))
    # occ-previous now names the newer image, so a second rollback goes forward.
    assert client.images.get(PREVIOUS) is new
    update.rollback(svc, timeout=10)
    assert client.containers.get("t1-sandbox").image is new


def test_rollback_needs_a_previous_image_other_than_the_current(
        client: FakeClient, svc: ServiceContext) -> None:
    with pytest.raises(OccError, match="no previous image") as e:
        update.rollback(svc, timeout=10)
    assert "after an 'occ update'" in e.value.hint
    previous = client.images.make(PREVIOUS)
    lifecycle.start(svc, image=previous)
    with pytest.raises(OccError, match="already runs the previous image"):
        update.rollback(svc, timeout=10)


def test_rollback_without_a_container_starts_the_previous_image(
        client: FakeClient, svc: ServiceContext) -> None:
    previous = client.images.make(PREVIOUS)
    outcome = update.rollback(svc, timeout=10)
    assert outcome.start.action == "created"
    assert client.containers.get("t1-sandbox").image is previous
