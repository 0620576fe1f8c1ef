"""Container commands on a remote host: routed over SSH, acting on that host's Engine only.

Everything is checked through the lab hosts' own Docker Engines, not through occ. The
sandbox image is built on h1 itself, as it would be on a real server.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest
from docker.errors import NotFound
from lab_occ import OccRun, isolated_occ, ssh_processes

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.browser import assert_opencode_ui, authenticated_page  # noqa: E402
from tests.conftest import send_ctrl_c  # noqa: E402

if TYPE_CHECKING:
    from conftest import Lab

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def human_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def remote(tmp_path_factory, lab: Lab):
    """occ with hosts h1 and h2 added and opencode running on h1 (module-wide: the image
    build on h1 is the slow part)."""
    with isolated_occ(tmp_path_factory.mktemp("remote")) as run:
        run.env["OCC_INSTANCE"] = f"occlab-{uuid.uuid4().hex[:6]}"
        run.container = f"{run.env['OCC_INSTANCE']}-sandbox"
        if Path(CA_BUNDLE).exists():
            ok(run("config", "set", "extra_ca_certs", CA_BUNDLE))
        # Any port: h1 has its own network namespace, but other services may run there.
        ok(run("config", "set", "opencode_web_port", str(free_port())))
        for name in ("h1", "h2"):
            ok(run("host", "add", name, lab.hosts[name].address, "-u", lab.user,
                   "-i", lab.keys.plain))
        ok(run("start", "--host", "h1", timeout=900))
        yield run
        run("reset", "--volumes", "--force", "--host", "h1", timeout=120)


def test_start_and_status_act_on_h1_only(remote: OccRun, lab_docker) -> None:
    started = ok(remote("start", "--host", "h1"))
    assert all(line.startswith("[h1] ") for line in human_lines(started)), started.stdout
    assert "already running" in started.stdout
    assert "occ open --host h1" in started.stdout

    on_h1 = lab_docker("h1").containers.get(remote.container)
    assert on_h1.status == "running"
    with pytest.raises(NotFound):
        lab_docker("h2").containers.get(remote.container)
    with pytest.raises(NotFound):
        docker.from_env().containers.get(remote.container)

    report = json.loads(ok(remote("status", "--host", "h1", "--json")).stdout)
    assert report["host"] == "h1"
    assert report["state"] == "running" and report["health"] == "healthy"
    assert report["opencode_version"] == "1.18.33"
    assert report["container"] == on_h1.short_id
    human = ok(remote("status", "--host", "h1"))
    assert all(line.startswith("[h1] ") for line in human_lines(human))
    assert "From here: occ open --host h1" in human.stdout


def test_every_container_command_is_routed(remote: OccRun, lab_docker) -> None:
    engine = lab_docker("h1")
    ok(remote("stop", "--host", "h1"))
    assert engine.containers.get(remote.container).status == "exited"
    assert remote("status", "--host", "h1", "-q").returncode == 1
    ok(remote("start", "--host", "h1"))
    assert engine.containers.get(remote.container).status == "running"
    first = engine.containers.get(remote.container).attrs["State"]["StartedAt"]
    ok(remote("restart", "--host", "h1"))
    assert engine.containers.get(remote.container).attrs["State"]["StartedAt"] != first

    logs = ok(remote("logs", "--host", "h1", "-n", "5"))
    assert logs.stdout and all(line.startswith("[h1] ") for line in logs.stdout.splitlines())
    creds = json.loads(ok(remote("credentials", "--host", "h1", "--json")).stdout)
    assert creds["host"] == "h1" and creds["username"] == "opencode"
    labels = engine.volumes.get(f"{remote.env['OCC_INSTANCE']}-data").attrs["Labels"]
    assert creds["password"] in labels.values()  # the login lives on the target
    ok(remote("host", "disconnect", "h1"))
    assert remote("status", "--host", "h1", "-q").returncode == 0  # a new master, same data


def test_default_host_routes_bare_commands_and_local_overrides(remote: OccRun) -> None:
    ok(remote("host", "default", "h1"))
    try:
        assert json.loads(ok(remote("status", "--json")).stdout)["host"] == "h1"
        for flag in (["--local"], ["--host", "local"]):
            local = json.loads(ok(remote("status", "--json", *flag)).stdout)
            assert "host" not in local and local["state"] == "absent"
    finally:
        ok(remote("host", "default", "local"))
    assert "host" not in json.loads(ok(remote("status", "--json")).stdout)


def test_unknown_host_lists_the_configured_ones(remote: OccRun) -> None:
    result = remote("status", "--host", "nope")
    assert result.returncode == 1
    assert "no host named 'nope'" in result.stderr and "h1, h2" in result.stderr


def test_unreadable_hosts_json_is_an_error_not_a_local_fallback(occ: OccRun) -> None:
    occ.hosts_file.parent.mkdir(parents=True)
    occ.hosts_file.write_text('{"version": 1, "default_host": "h1", "hosts": {')
    result = occ("status")
    assert result.returncode == 1 and str(occ.hosts_file) in result.stderr
    assert "Traceback" not in result.stderr


def test_browser_renders_the_remote_web_ui_through_occ_open(remote: OccRun) -> None:
    creds = json.loads(ok(remote("credentials", "--host", "h1", "--json")).stdout)
    port = free_port()
    opener = remote.popen("open", "--host", "h1", "--print-url", "--local-port", str(port))
    try:
        url = opener.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        with authenticated_page(url + "/", creds["username"], creds["password"]) as page:
            assert_opencode_ui(page)
    finally:
        send_ctrl_c(opener)
        _, err = opener.communicate(timeout=30)
    assert opener.returncode == 0, err
    with socket.socket() as probe:  # the forward is gone with the command
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    remote.assert_only_masters()


def test_workspace_survives_update(remote: OccRun, lab_docker) -> None:
    engine = lab_docker("h1")
    ok(remote("start", "--host", "h1"))
    container = engine.containers.get(remote.container)
    code, out = container.exec_run(
        ["sh", "-c", "echo 'remote work' > /home/opencoder/workspace/keep.txt"], user="opencoder")
    assert code == 0, out
    # A new image for the same settings appears on h1 (as a rebuild would make it).
    tag = container.image.tags[0]
    new_image, _ = engine.images.build(
        fileobj=io.BytesIO(f"FROM {tag}\nLABEL occ.test.update=yes\n".encode()), tag=tag)
    updated = ok(remote("update", "--host", "h1", "--yes", timeout=300))
    assert "[h1] Updated to" in updated.stdout
    container = engine.containers.get(remote.container)
    assert container.image.id == new_image.id
    from opencode_cloud.engine.exec_stream import run_collected

    # docker-py's exec_run can lose a quick command's output (docker/docker-py#3332)
    code, out = run_collected(container.client.api, container.id,
                              ["cat", "/home/opencoder/workspace/keep.txt"])
    assert code == 0 and out.decode().strip() == "remote work"


def test_a_host_setting_overrides_config_json_there_only(remote: OccRun, lab_docker) -> None:
    ok(remote("host", "edit", "h1", "--set", "memory_limit=3g"))
    try:
        restarted = ok(remote("start", "--host", "h1"))
        assert "memory_limit 4g -> 3g" in restarted.stdout
        attrs = lab_docker("h1").containers.get(remote.container).attrs
        assert attrs["HostConfig"]["Memory"] == 3 * 1024**3
        assert json.loads(ok(remote("config", "show", "--json")).stdout)["memory_limit"] == "4g"
    finally:
        ok(remote("host", "edit", "h1", "--unset", "memory_limit"))
    ok(remote("start", "--host", "h1"))
    attrs = lab_docker("h1").containers.get(remote.container).attrs
    assert attrs["HostConfig"]["Memory"] == 4 * 1024**3


def test_logs_follow_fails_clearly_when_sshd_dies(remote: OccRun, lab: Lab) -> None:
    ok(remote("start", "--host", "h1"))
    follower = remote.popen("logs", "-f", "-n", "1", "--host", "h1")
    try:
        assert follower.stdout.readline().startswith("[h1] ")
        lab.control("cut", "h1")
        started = time.monotonic()
        _, err = follower.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        if follower.poll() is None:
            follower.kill()
        lab.control("restore", "h1")
    assert follower.returncode == 1, err
    assert "[h1] Error:" in err and "Traceback" not in err
    assert elapsed < 30, f"took {elapsed:.1f}s to notice"
    ok(remote("status", "--host", "h1", "-q"))  # a new connection works again


def test_fifty_remote_commands_leave_only_the_master(remote: OccRun) -> None:
    ok(remote("host", "disconnect", "--all"))
    for _ in range(50):
        assert remote("status", "--host", "h1", "-q").returncode == 0  # checks processes too
    masters = remote.masters()
    assert len(masters) == 1, masters
    leftovers = [p.name for p in remote.control_dir.iterdir() if p.name.endswith(".docker.sock")]
    assert leftovers == []
    assert len(ssh_processes(remote.control_dir)) == 1


def test_failures_read_like_local_ones_with_the_host_named(remote: OccRun, lab: Lab) -> None:
    lab.control("dockerd-stop", "h2")
    try:
        stopped = remote("status", "--host", "h2")
    finally:
        lab.control("dockerd-start", "h2")
    assert stopped.returncode == 1
    assert stopped.stderr.startswith("[h2] Error: Docker is installed but its daemon is not "
                                      "running"), stopped.stderr
    ok(remote("host", "add", "nd", lab.hosts["h2"].address, "-u", lab.nodocker_user,
              "-i", lab.keys.plain, "--no-verify"))
    denied = remote("status", "--host", "nd")
    assert denied.returncode == 1
    assert f"[nd] Error: {lab.nodocker_user} may not use the Docker socket" in denied.stderr
