"""Fleet commands on real lab hosts: each acts on exactly the hosts of its group (checked
through each host's own Engine), failures stay on their host, a rollout halts on a broken
canary, and Ctrl-C leaves nothing behind but the masters.

The sandbox image is built once on this machine (the integration tests do it) and seeded
onto the hosts through the lab registry, instead of being built on every host.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest
from docker.errors import NotFound
from lab_occ import OccRun, build_sandbox_here, isolated_occ, occ_argv, ok

from tests.conftest import INTERRUPTIBLE, send_ctrl_c

if TYPE_CHECKING:
    from conftest import Lab

FLEET = ("h5", "h6", "h7")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE = "opencode-cloud-sandbox:1.18.33"






@pytest.fixture(scope="module")
def fleet(tmp_path_factory, lab: Lab):
    """occ with h5-h7 in group 'web', h8 and an unreachable address in group 'mixed' (with
    h5 and h6), and the image on h5-h7; the service is started by the first test."""
    build_sandbox_here(tmp_path_factory.mktemp("build"))
    lab.seed_image(IMAGE, list(FLEET))
    with isolated_occ(tmp_path_factory.mktemp("fleet")) as run:
        run.env["OCC_INSTANCE"] = f"occfl-{uuid.uuid4().hex[:6]}"
        run.container = f"{run.env['OCC_INSTANCE']}-sandbox"
        if Path(CA_BUNDLE).exists():
            ok(run("config", "set", "extra_ca_certs", CA_BUNDLE))
        for name in (*FLEET, "h8"):
            groups = ["-g", "web"] if name in FLEET else []
            groups += ["-g", "mixed"] if name in ("h5", "h6", "h8") else []
            ok(run("host", "add", name, lab.hosts[name].address, "-u", lab.user,
                   "-i", lab.keys.plain, *groups))
        ok(run("host", "add", "dead", lab.unreachable_address, "-u", lab.user, "-i", lab.keys.plain,
               "-g", "mixed", "--no-verify"))
        yield run
        run("reset", "--volumes", "--force", "--group", "web", timeout=300)


def containers(lab_docker, name: str, container: str):
    try:
        return lab_docker(name).containers.get(container)
    except NotFound:
        return None


def test_start_status_stop_restart_logs_and_test_act_on_exactly_the_group(
        fleet: OccRun, lab_docker) -> None:
    started = ok(fleet("start", "--group", "web", timeout=600))
    for name in FLEET:
        assert containers(lab_docker, name, fleet.container).status == "running"
        assert f"{name} " in started.stdout  # its row in the recap
    assert "3 ok, 0 failed" in started.stdout
    assert containers(lab_docker, "h8", fleet.container) is None  # not in the group
    for line in started.stdout.splitlines()[:started.stdout.splitlines().index("") if "" in
                                             started.stdout.splitlines() else 0]:
        assert line.startswith(tuple(f"[{n}] " for n in FLEET)), line  # prefixed lines

    report = json.loads(ok(fleet("status", "--group", "web", "--json")).stdout)
    assert [entry["host"] for entry in report] == list(FLEET)
    assert all(entry["ok"] and entry["state"] == "running" and entry["health"] == "healthy"
               for entry in report), report
    table = ok(fleet("status", "--group", "web")).stdout
    assert all(name in table for name in FLEET) and "3 ok, 0 failed" in table

    ok(fleet("stop", "--group", "web", timeout=300))
    assert {containers(lab_docker, n, fleet.container).status for n in FLEET} == {"exited"}
    restarted = ok(fleet("restart", "--group", "web", timeout=600))
    assert {containers(lab_docker, n, fleet.container).status for n in FLEET} == {"running"}
    assert "3 ok" in restarted.stdout

    logs = ok(fleet("logs", "-n", "3", "--group", "web"))
    for name in FLEET:
        assert any(line.startswith(f"[{name}] ") for line in logs.stdout.splitlines())
    assert all(line.startswith(tuple(f"[{n}] " for n in FLEET))
               for line in logs.stdout.splitlines() if line.strip())

    tested = json.loads(ok(fleet("host", "test", "--group", "web", "--json")).stdout)
    assert [t["host"] for t in tested] == list(FLEET)
    assert all(t["ok"] and t["docker"]["socket_usable"] for t in tested)


def test_an_unreachable_host_and_a_stopped_sshd_fail_with_reasons_while_others_succeed(
        fleet: OccRun, lab: Lab) -> None:
    ok(fleet("host", "disconnect", "h8"))  # a kept-open connection would outlive sshd-stop
    lab.control("sshd-stop", "h8")
    try:
        fleet.env["OCC_SSH_RETRY_DELAY"] = "0.2"
        started = time.monotonic()
        r = fleet("status", "--group", "mixed", "--json", timeout=120)
        took = time.monotonic() - started
        table = fleet("status", "--group", "mixed", timeout=120)
    finally:
        fleet.env.pop("OCC_SSH_RETRY_DELAY")
        lab.control("sshd-start", "h8")
    assert r.returncode == 1, r.stderr
    by_host = {entry["host"]: entry for entry in json.loads(r.stdout)}
    assert sorted(by_host) == ["dead", "h5", "h6", "h8"]
    assert by_host["h5"]["ok"] and by_host["h5"]["state"] == "running"
    assert by_host["h6"]["ok"] and by_host["h6"]["state"] == "running"
    for name in ("dead", "h8"):
        assert by_host[name]["ok"] is False and by_host[name]["status"] == "unreachable"
        assert "cannot reach" in by_host[name]["error"]["message"]
        assert "refused" in by_host[name]["error"]["message"].lower()
        assert by_host[name]["error"]["hint"]
    assert took < 30, took  # retries of the dead hosts did not hold up the others
    assert table.returncode == 1
    assert "2 ok, 2 failed" in table.stdout and "unreachable" in table.stdout
    assert "[dead] Error: cannot reach" in table.stderr


def broken_image(lab: Lab) -> str:
    """An image that never becomes healthy, in the lab registry: the canary's update."""
    local = docker.from_env()
    dockerfile = f'FROM {IMAGE}\nENTRYPOINT ["/bin/sh", "-c", "echo broken; exit 3"]\n'
    image, _ = local.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag="occ-broken:v3",
                                  rm=True, labels={"dev.opencode-cloud.opencode-version": "9.9.9"})
    ref = f"{lab.registry.local}/occ-broken:v3"
    image.tag(ref)
    for _ in local.images.push(ref, stream=True, decode=True):
        pass
    return "occ-broken:v3"


def test_a_rolling_update_whose_canary_fails_leaves_every_other_host_untouched(
        fleet: OccRun, lab: Lab, lab_docker) -> None:
    before = {n: (c.id, c.image.id) for n in FLEET
              if (c := containers(lab_docker, n, fleet.container)) is not None}
    assert len(before) == 3
    name = broken_image(lab)
    canary = FLEET[0]
    ok(fleet("host", "edit", canary, "--set", "image_source=prebuilt", "--set",
             f"image={lab.hosts[canary].registry}/{name}"))
    try:
        r = fleet("update", "--group", "web", "--yes", "--timeout", "30", timeout=600)
    finally:
        ok(fleet("host", "edit", canary, "--unset", "image_source", "--unset", "image"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "rolled back" in r.stdout + r.stderr
    assert "skipped" in r.stdout and "0 ok" in r.stdout
    for other in FLEET[1:]:
        c = containers(lab_docker, other, fleet.container)
        assert (c.id, c.image.id) == before[other], other  # not touched at all
    c = containers(lab_docker, canary, fleet.container)
    assert c.status == "running" and c.image.id == before[canary][1]  # back on its image


def no_forward_sockets(run: OccRun) -> list[str]:
    return [p.name for p in run.control_dir.glob("*.docker.sock")]


def test_ctrl_c_during_start_group_and_logs_follow_all_leaves_only_the_masters(
        fleet: OccRun) -> None:
    ok(fleet("stop", "--group", "web", timeout=300))
    proc = subprocess.Popen([*occ_argv(), "start", "--group", "web"], env=fleet.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **INTERRUPTIBLE)
    time.sleep(2.0)  # connected, the containers being started
    send_ctrl_c(proc)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in out or "not started" in out, out
    fleet.assert_only_masters()
    assert no_forward_sockets(fleet) == []

    ok(fleet("start", "--group", "web", timeout=600))
    proc = subprocess.Popen([*occ_argv(), "logs", "-f", "--all"], env=fleet.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **INTERRUPTIBLE)
    time.sleep(4.0)
    send_ctrl_c(proc)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), out + err  # h8/dead may fail; Ctrl-C itself is fine
    assert any(line.startswith("[h5] ") for line in out.splitlines()), out
    fleet.assert_only_masters()
    assert no_forward_sockets(fleet) == []




def test_watch_in_a_terminal_shows_every_host_marks_a_dead_sshd_and_ends_on_q(
        fleet: OccRun, lab: Lab) -> None:
    import pexpect

    ok(fleet("start", "--group", "web", timeout=600))  # running (a no-op after the first test)
    env = {**fleet.env, "OCC_SSH_RETRY_DELAY": "0.2", "NO_COLOR": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "status", "--group",
                                           "mixed", "--watch", "--interval", "2"],
                          env=env, timeout=60, dimensions=(40, 200), encoding="utf-8")
    screen = io.StringIO()
    child.logfile_read = screen
    try:
        for name in ("h5", "h6", "h8", "dead"):
            child.expect(rf"{name}\b")
        child.expect("running")
        lab.control("sshd-stop", "h8")
        subprocess.run([*occ_argv(), "host", "disconnect", "h8"], env=fleet.env,
                       capture_output=True, timeout=60)  # as if its connection had dropped
        started = time.monotonic()
        child.expect(r"h8[\s│┃|]+(unreachable|not answering)", timeout=30)
        marked = time.monotonic() - started
        child.expect("h5", timeout=10)  # the others keep refreshing
        child.send("q")
        child.expect(pexpect.EOF, timeout=20)
    finally:
        lab.control("sshd-start", "h8")
        child.close()
    assert child.exitstatus == 0
    drawn = screen.getvalue()
    # The full-screen view entered the alternate screen and left it again at the end, with
    # the cursor shown: the terminal is as it was.
    assert "\x1b[?1049h" in drawn and drawn.rfind("\x1b[?1049l") > drawn.rfind("\x1b[?1049h")
    assert "\x1b[?25h" in drawn[drawn.rfind("\x1b[?1049h"):]
    assert marked < 2 * 2 + 4, marked  # two intervals (plus the 1.4 s of retries)


def test_watch_without_a_terminal_prints_one_json_array_per_refresh(fleet: OccRun) -> None:
    r = fleet("status", "--group", "web", "--watch", "--json", "--interval", "1", "--count",
              "3", timeout=120)
    assert r.returncode == 0, r.stderr
    arrays = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(arrays) == 3
    for array in arrays:
        assert [entry["host"] for entry in sorted(array, key=lambda e: e["host"])] == \
            list(FLEET)
        assert all(entry["ok"] and entry["state"] == "running" for entry in array)
        assert all(entry["memory"] and entry["memory"]["used_bytes"] > 0 for entry in array)
    assert fleet("status", "--watch", "--interval", "0").returncode == 2
    assert fleet("-q", "status", "--group", "web", "--watch").returncode == 1
