"""`occ update --host h1` cut off at each step of the container switch: h1 keeps (or gets
back) a running service with its work, `occ status` names the half-finished operation from
the host's own state, and the next `occ update` or `occ start` mends it without leaks.

occ freezes itself right after a step (OCC_TEST_STOP_AT, read by the CLI's reporter:
SIGSTOP), then the test kills its SSH master connection and the frozen occ with SIGKILL, as
a dropped connection or a killed laptop would leave it. The images are two small versions
in the lab registry (``image_source: prebuilt``), so an update is a pull, not a build.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest
from lab_occ import (
    SANDBOX,
    OccRun,
    build_sandbox_here,
    cut_at,
    free_port,
    isolated_occ,
    ok,
    published_versions,
)

if TYPE_CHECKING:
    from conftest import Lab

HOST = "h1"
OLD, NEW = "1.18.31", "1.18.32"
STEPS = ("image-ready", "old-stopped", "new-created", "new-started")


@pytest.fixture(scope="module")
def published(tmp_path_factory, lab: Lab):
    build_sandbox_here(tmp_path_factory.mktemp("build"))
    lab.seed_image(SANDBOX, [HOST])
    name = f"occ-cut-{uuid.uuid4().hex[:6]}"
    with published_versions(lab, name, (OLD, NEW)) as ids:
        yield name, ids


@pytest.fixture
def service(published, tmp_path_factory, lab: Lab, lab_docker):
    """A service on h1 at OLD with a file in its workspace; afterwards nothing of it is
    left on h1 (containers, the marker volume, volumes, images)."""
    name, _ids = published
    engine = lab_docker(HOST)
    with isolated_occ(tmp_path_factory.mktemp("cut")) as run:
        instance = f"occcut-{uuid.uuid4().hex[:6]}"
        run.env["OCC_INSTANCE"] = instance
        for key, value in (("opencode_web_port", str(free_port())),
                           ("image_source", "prebuilt"),
                           ("image", f"{lab.registry.from_hosts[HOST]}/{name}"),
                           ("opencode_version", OLD)):
            ok(run("config", "set", key, value))
        ok(run("host", "add", HOST, lab.hosts[HOST].address, "-u", lab.user,
               "-i", lab.keys.plain))
        ok(run("start", "--host", HOST, timeout=600))
        ok(run("exec", "--host", HOST, "--", "sh", "-c", "echo kept > ~/workspace/kept.txt"))
        run.instance = instance
        try:
            yield run
        finally:
            run("reset", "--images", "--volumes", "--force", "--host", HOST, timeout=300,
                check_processes=False)
        assert [c.name for c in engine.containers.list(all=True)
                if c.name.startswith(instance)] == []
        assert [v.name for v in engine.volumes.list() if v.name.startswith(instance)] == []


def cut_update_at(run: OccRun, step: str) -> None:
    """Run the update until it has done ``step``, then kill its connection and occ."""
    ok(run("config", "set", "opencode_version", NEW))
    cut_at(run, step, "update", "--host", HOST, "--yes")


@pytest.mark.parametrize(("step", "next_command"), [
    ("image-ready", "update"), ("old-stopped", "start"),
    ("new-created", "update"), ("new-started", "start"),
    ("old-stopped", "update"), ("new-created", "start"),
])
def test_an_update_cut_off_at_each_step_is_mended(service: OccRun, lab_docker, published,
                                                  step: str, next_command: str) -> None:
    _name, ids = published
    engine = lab_docker(HOST)
    cut_update_at(service, step)

    # Between: status (from here, or any machine) names the operation and how far it got.
    report = json.loads(service("status", "--host", HOST, "--json").stdout)
    assert report["interrupted"] is not None, report
    assert report["interrupted"]["operation"] == "update"
    assert report["interrupted"]["step"] == step
    human = service("status", "--host", HOST)
    assert "'occ update', started" in human.stderr and "has not finished" in human.stderr
    assert f"occ update --host {HOST} or occ start --host {HOST}" in human.stderr

    # The next command mends it, says what it found, and the service runs with its work.
    mended = ok(service(next_command, "--host", HOST, "--yes") if next_command == "update"
                else service("start", "--host", HOST, timeout=600))
    assert "'occ update', started" in mended.stdout + mended.stderr
    report = json.loads(ok(service("status", "--host", HOST, "--json")).stdout)
    assert report["state"] == "running" and report["health"] == "healthy", report
    assert report["interrupted"] is None
    # update and start both end on the configured version (start recreates for it)
    assert engine.containers.get(f"{service.instance}-sandbox").image.id == ids[NEW]
    kept = ok(service("exec", "--host", HOST, "--", "cat", "/home/opencoder/workspace/kept.txt"))
    assert kept.stdout == "kept\n"
    # No leaks: one container, no marker.
    names = [c.name for c in engine.containers.list(all=True)
             if c.name.startswith(service.instance)]
    assert names == [f"{service.instance}-sandbox"]
    assert [v.name for v in engine.volumes.list()
            if v.name == f"{service.instance}-operation"] == []
