"""Status fields of issue 11: resource use from a stats sample, restart reasons, drift
between the running container and the configuration, and the --watch refresh."""

from __future__ import annotations

import json
import threading
import time

from opencode_cloud.config.model import Config
from opencode_cloud.errors import OccError
from opencode_cloud.fleet.watch import Row, Session, Watcher
from opencode_cloud.output.watch import cells, row_json
from opencode_cloud.service import spec
from opencode_cloud.service.credentials import Credentials, login_digest
from opencode_cloud.service.status import format_bytes, resources, restart_reason
from opencode_cloud.ssh.errors import Problem, SshError

STATS = {"memory_stats": {"usage": 300 * 2**20, "limit": 4 * 2**30,
                          "stats": {"total_inactive_file": 44 * 2**20}},
         "cpu_stats": {"cpu_usage": {"total_usage": 30 * 10**9}}}


def test_memory_leaves_out_the_page_cache_and_cpu_is_since_start_or_the_last_interval():
    first = resources(STATS, uptime=600)
    assert first["memory"] == {"used_bytes": 256 * 2**20, "limit_bytes": 4 * 2**30}
    assert first["cpu_percent"] == 5.0  # 30 s of CPU in 600 s
    later = {**STATS, "cpu_stats": {"cpu_usage": {"total_usage": 31 * 10**9}}}
    previous = {"_cpu_sample": (30 * 10**9, time.time() - 2)}
    assert 40 <= resources(later, 602, previous)["cpu_percent"] <= 60  # 1 s in 2 s
    assert resources(None, 600) == {} and resources({"memory_stats": {}}, 600) == {}
    assert format_bytes(256 * 2**20) == "256.0 MiB" and format_bytes(512) == "512 B"


def test_restart_reasons_name_out_of_memory_and_exit_codes():
    assert restart_reason({"OOMKilled": True}, 1) == "OOM-killed"
    assert restart_reason({"ExitCode": 137}, 2).startswith("killed (exit code 137")
    assert restart_reason({"ExitCode": 3}, 1) == "exited with code 3"
    assert restart_reason({"ExitCode": 0}, 0) is None
    assert restart_reason({"Status": "restarting", "ExitCode": 1}, 0) == "exited with code 1"


def running_labels(config: Config, **change) -> dict[str, str]:
    summary = spec.settings_summary(config, "sha256:x", login=login_digest(
        Credentials("opencode", "pw")))
    summary.update(change)
    return {spec.SUMMARY_LABEL: json.dumps(summary)}


def test_drift_lists_each_setting_with_both_values_and_no_secret():
    running = Config(opencode_web_port=3000, container_env=["KEY=sk-one"])
    configured = Config(opencode_web_port=3100, container_env=["KEY=sk-two"],
                        cockpit_enabled=True, memory_limit="8g")
    drift = spec.configuration_drift(running_labels(running), "img:1", configured, "img:2")
    by_key = {d["key"]: d for d in drift}
    assert by_key["opencode_web_port"] == {"key": "opencode_web_port", "running": 3000,
                                           "configured": 3100}
    assert by_key["cockpit_enabled"] == {"key": "cockpit_enabled", "running": False,
                                         "configured": True}
    assert by_key["memory_limit"]["configured"] == "8g"
    assert by_key["image"] == {"key": "image", "running": "img:1", "configured": "img:2"}
    assert "sk-" not in json.dumps(drift)  # env values never shown, only digests
    assert by_key["container_env"]["running"].startswith("digest ")
    assert spec.configuration_drift(running_labels(running), "img:1", running, "img:1") == []


def test_a_rolled_back_service_does_not_count_its_pinned_image_as_drift():
    config = Config()
    labels = running_labels(config, pinned_image=True)
    assert spec.configuration_drift(labels, "img:old", config, "img:new") == []
    assert spec.configuration_drift({}, "img", config, "img")  # no summary: all differ


def test_a_watch_refresh_shows_each_host_and_does_not_wait_for_a_stuck_one():
    release = threading.Event()
    opened: list[str] = []

    def open_target(name):
        def opener():
            opened.append(name)
            return name, lambda: None
        return opener

    def collect(service, previous):
        if service == "stuck":
            release.wait(5)
        if service == "down":
            raise SshError("cannot reach 10.0.0.9:22", "check", problem=Problem.REFUSED,
                           host="down")
        return {"state": "running", "health": "healthy", "restarts": 0, "drift": []}

    watcher = Watcher([Session(n, open_target(n)) for n in ("a", "stuck", "down")], collect,
                      timeout=0.5)
    started = time.monotonic()
    rows = watcher.refresh()
    assert time.monotonic() - started < 2
    by_name = {r.name: r for r in rows}
    assert by_name["a"].status == "ok" and by_name["a"].round_trip_ms is not None
    assert by_name["down"].status == "unreachable"
    assert "cannot reach" in by_name["down"].error.message
    assert by_name["stuck"].status == "waiting"  # still connecting on its first refresh
    assert [r.name for r in rows][-1] == "a"  # failing hosts first
    rows = watcher.refresh()  # the stuck one is not started twice; "down" connects anew
    assert opened.count("stuck") == 1 and opened.count("down") == 2
    release.set()
    time.sleep(0.2)
    assert {r.name: r.status for r in watcher.refresh()}["stuck"] == "ok"
    watcher.close()


def test_watch_rows_render_as_cells_and_json():
    ok = Row("h1", {"state": "running", "health": "healthy", "opencode_version": "1.18.33",
                    "uptime_seconds": 65, "cpu_percent": 1.5, "docker_version": "20.10",
                    "memory": {"used_bytes": 2**20, "limit_bytes": 2**30}, "restarts": 2,
                    "last_restart_reason": "OOM-killed", "_cpu_sample": (1, 2),
                    "drift": [{"key": "opencode_web_port", "running": 1, "configured": 2}]},
             None, "ok", 48.0)
    text = cells(ok)
    assert text[:3] == ["h1", "48 ms", "20.10"]
    assert "2 (OOM-killed)" in text and "yes: opencode_web_port" in text
    assert "1.0 MiB / 1.0 GiB" in text
    entry = row_json(ok)
    assert entry["ok"] and entry["reachable"] and "_cpu_sample" not in entry
    down = Row("h2", None, OccError("no answer for 6 s"), "not answering")
    assert cells(down)[1] == "not answering" and cells(down)[-1] == "no answer for 6 s"
    assert row_json(down) == {"host": "h2", "ok": False, "reachable": False,
                              "round_trip_ms": None, "status": "not answering",
                              "error": {"message": "no answer for 6 s", "hint": None}}


def test_the_port_in_use_hint_compares_whole_port_numbers():
    from opencode_cloud.service.lifecycle import port_in_use_error

    class Endpoint:
        where = "on web1"
        free_port_near = None

    class Ctx:
        config = Config(opencode_web_port=80, cockpit_enabled=True, cockpit_port=8080)
        endpoint = Endpoint()

    error = port_in_use_error(Ctx(), "Bind for 127.0.0.1:8080 failed: port is already allocated")
    assert "port 8080" in error.message and "cockpit_port" in error.hint
    error = port_in_use_error(Ctx(), "listen tcp4 127.0.0.1:80: bind: address already in use")
    assert "port 80 " in error.message and "opencode_web_port" in error.hint


def test_the_probes_second_line_gives_the_watchdogs_restarts_and_the_cgroup_figures():
    from opencode_cloud.service.health import docker_health, parse_probe
    from opencode_cloud.service.status import watchdog_resources

    line = ('occ-watchdog {"restarts": 2, "last_reason": "OOM-killed", "last_at": 1764650000, '
            '"memory_used": 209715200, "memory_limit": 4294967296, "cpu_ns": 6000000000}')
    health = parse_probe('{"healthy":true,"version":"1.18.33"}\n' + line, True)
    assert health.healthy and health.version == "1.18.33"
    assert health.watchdog["restarts"] == 2 and health.watchdog["last_reason"] == "OOM-killed"
    failing = parse_probe("curl: (28) Operation timed out\n" + line, False)
    assert not failing.healthy and failing.detail.startswith("curl") and failing.watchdog
    assert parse_probe("not json", True) is None
    attrs = {"State": {"Health": {"Status": "healthy", "Log": [
        {"ExitCode": 0, "Output": '{"healthy":true,"version":"1.18.33"}\n' + line}]}}}
    assert docker_health(attrs).watchdog["cpu_ns"] == 6 * 10**9
    figures = watchdog_resources(health.watchdog, uptime=600)
    assert figures["memory"] == {"used_bytes": 200 * 2**20, "limit_bytes": 4 * 2**30}
    assert figures["cpu_percent"] == 1.0
    # The same reading again (renewed every 10 s): the last CPU figure stays.
    again = watchdog_resources(health.watchdog, 610, {**figures})
    assert again["cpu_percent"] == 1.0 and again["_cpu_sample"] == figures["_cpu_sample"]
    assert watchdog_resources(None, 600) == {} and resources({"memory_stats": {"usage": 0}},
                                                            600) == {}


def test_watchdog_settings_reach_the_container_and_its_summary():
    config = Config(watchdog_interval=20, watchdog_memory_percent=80)
    assert config.watchdog_settings == [20, 5, 3, 80]
    assert spec.watchdog_environment(config)[0] == "OCC_WATCHDOG=1"
    assert "OCC_WATCHDOG_MEMORY_PERCENT=80" in spec.watchdog_environment(config)
    assert spec.watchdog_environment(Config(watchdog=False)) == ["OCC_WATCHDOG=0"]
    drift = spec.configuration_drift(running_labels(Config()), "i", config, "i")
    assert {"key": "watchdog", "running": [10, 5, 3, 90], "configured": [20, 5, 3, 80]} in drift
