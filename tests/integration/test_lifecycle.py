"""The local lifecycle against the real Engine and the real image with real opencode."""

from __future__ import annotations

import json
import time

from tests.browser import TERMINAL_ROUND_TRIP, assert_opencode_ui, authenticated_page
from tests.conftest import send_ctrl_c
from tests.integration.conftest import free_port, http_status


def test_start_reports_url_and_user_and_status_is_healthy(service):
    result = service("start", check=True)
    assert f"http://127.0.0.1:{service.port}" in result.stdout
    assert "Username: opencode" in result.stdout
    assert "local-only" in result.stdout
    user, password = service.credentials()
    assert password not in result.stdout + result.stderr  # only 'occ credentials' prints it

    report = json.loads(service("status", "--json", check=True).stdout)
    assert report["state"] == "running"
    assert report["health"] == "healthy"
    assert report["opencode_version"] == "1.18.33"
    assert report["url"] == f"http://127.0.0.1:{service.port}"
    assert report["container"] and report["image"].endswith(":1.18.33")
    assert service("status", "-q").returncode == 0


def test_container_is_hardened_as_designed(service):
    service("start", check=True)
    attrs = service.container().attrs
    bindings = attrs["HostConfig"]["PortBindings"]["3000/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(service.port)}]
    assert "9090/tcp" not in attrs["HostConfig"]["PortBindings"]  # cockpit off by default
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert attrs["HostConfig"]["Memory"] > 0
    top = service.container().top(ps_args="-o pid,user,args")
    opencode_rows = [p for p in top["Processes"] if "opencode web" in " ".join(p)]
    assert opencode_rows and all(row[1] != "root" for row in opencode_rows)


def test_web_ui_needs_the_credentials(service):
    service("start", check=True)
    url = f"http://127.0.0.1:{service.port}"
    assert http_status(url + "/") == 401
    assert http_status(url + "/global/health", ("opencode", "wrong-password")) == 401
    assert http_status(url + "/", service.credentials()) == 200


def test_headless_chromium_renders_the_web_ui(service):
    service("start", check=True)
    user, password = service.credentials()
    with authenticated_page(f"http://127.0.0.1:{service.port}/", user, password) as page:
        assert_opencode_ui(page)


def test_terminal_websocket_works_with_auth_on(service):
    # Basic auth and the terminal's WebSocket broke together upstream twice: open one.
    service("start", check=True)
    user, password = service.credentials()
    with authenticated_page(f"http://127.0.0.1:{service.port}/", user, password) as page:
        assert page.evaluate(TERMINAL_ROUND_TRIP) == "ok"


def test_start_and_stop_are_idempotent(service):
    service("start", check=True)
    again = service("start", check=True)
    assert "already running" in again.stdout
    first = service("stop", check=True)
    assert "stopped" in first.stdout
    second = service("stop", check=True)
    assert "not running; nothing to stop" in second.stdout
    assert service("status", "-q").returncode == 1
    assert json.loads(service("status", "--json").stdout)["state"] == "stopped"


def test_workspace_survives_stop_start_restart_and_recreation(service):
    service("start", check=True)
    service.write_workspace_file("keep.txt", "precious work")
    user_before = service.credentials()
    first_id = service.container().id

    service("stop", check=True)
    service("start", check=True)
    assert service.read_workspace_file("keep.txt") == "precious work"

    assert "started" in service("restart", check=True).stdout
    assert service.read_workspace_file("keep.txt") == "precious work"

    new_port = free_port()
    service("config", "set", "opencode_web_port", str(new_port), check=True)
    recreated = service("start", check=True)
    assert "recreating the container; volumes are kept" in recreated.stdout
    service.port = new_port
    assert service.container().id != first_id
    assert service.read_workspace_file("keep.txt") == "precious work"
    assert service.credentials() == user_before
    assert http_status(f"http://127.0.0.1:{new_port}/", user_before) == 200


def test_logs_lines_grep_and_follow(service):
    service("start", check=True)
    lines = service("logs", "-n", "5", check=True).stdout.splitlines()
    assert 0 < len(lines) <= 5
    assert (
        "localhost:3000"
        in service("logs", "-n", "all", "--grep", "localhost:3000", check=True).stdout
    )
    stamped = service("logs", "-n", "1", "--timestamps", check=True).stdout
    assert stamped[:4].isdigit()  # RFC 3339 timestamp first
    follower = service.popen("logs", "-f", "-n", "1", stdout=-1, stderr=-1)
    time.sleep(2)
    assert follower.poll() is None, "logs -f must keep following"
    send_ctrl_c(follower)
    _, err = follower.communicate(timeout=10)
    assert follower.returncode == 0, err
    assert "Traceback" not in err
    bad = service("logs", "-n", "many")
    assert bad.returncode == 2


def test_credentials_json_shape(service):
    service("start", check=True)
    data = json.loads(service("credentials", "--json", check=True).stdout)
    assert set(data) == {"username", "password"}
    assert data["username"] == "opencode" and len(data["password"]) >= 20


def test_reset_keeps_volumes_unless_forced(service):
    service("start", check=True)
    service.write_workspace_file("keep.txt", "precious work")
    creds = service.credentials()
    removed = service("reset", check=True)
    assert "container" in removed.stdout and "Volumes kept" in removed.stdout
    refused = service("reset", "--volumes")
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert service.client.volumes.get(f"{service.instance}-workspace")
    service("start", check=True)
    assert service.read_workspace_file("keep.txt") == "precious work"
    assert service.credentials() == creds

    service("reset", "--volumes", "--force", check=True)
    names = {v.name for v in service.client.volumes.list()}
    assert not any(name.startswith(service.instance) for name in names)
    assert service("credentials").returncode == 1
