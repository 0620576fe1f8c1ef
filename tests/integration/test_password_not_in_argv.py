"""The password never shows in any process's arguments on this machine.

Every user of the Docker host can read /proc/*/cmdline, and that includes the container's
processes. The sampler reads all of them many times a second while the service starts
(entrypoint, chpasswd for Cockpit, cockpit-ws), answers health checks (Docker's every 10 s
and occ's own probes), and takes logins for the web UI and Cockpit.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime

from opencode_cloud.service.health import split_probe_output
from tests.integration.conftest import free_port, http_status

WINDOW_SECONDS = 30
SCAN_PAUSE = 0.02  # about 40 full scans a second


class CmdlineSampler(threading.Thread):
    """Reads every /proc/PID/cmdline in a loop and remembers what it saw."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(daemon=True)
        self.secret = secret
        self.stop = threading.Event()
        self.scans = 0
        self.leaks: list[tuple[str, bytes]] = []
        self.seen_probe = 0  # scans that caught the image's probe running
        self.seen_opencode = False
        self.seen_cockpit = False

    def run(self) -> None:
        while not self.stop.is_set():
            probe_now = False
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        argv = handle.read()
                except OSError:  # the process ended between listdir and open
                    continue
                if self.secret in argv:
                    self.leaks.append((pid, argv.replace(b"\0", b" ")))
                if b"occ-entrypoint\0probe" in argv or b"curl\0-fsS" in argv:
                    probe_now = True
                if b"opencode\0web\0" in argv:
                    self.seen_opencode = True
                if b"cockpit-ws\0" in argv:
                    self.seen_cockpit = True
            self.seen_probe += probe_now
            self.scans += 1
            time.sleep(SCAN_PAUSE)


def health_runs_since(container, since: datetime) -> list[dict]:
    container.reload()
    log = (container.attrs["State"].get("Health") or {}).get("Log") or []
    return [entry for entry in log if docker_time(entry["Start"]) >= since]


def docker_time(text: str) -> datetime:
    # RFC 3339 with nanoseconds: keep microseconds for datetime.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def test_password_never_in_any_process_arguments(service):
    cockpit_port = free_port()
    service("config", "set", "cockpit_port", str(cockpit_port), check=True)
    service("config", "set", "cockpit_enabled", "true", check=True)
    service("start", check=True)  # builds the image if needed, outside the window
    user, password = service.credentials()
    service("stop", check=True)
    url = f"http://127.0.0.1:{service.port}"
    cockpit = f"http://127.0.0.1:{cockpit_port}"

    sampler = CmdlineSampler(password.encode())
    window_start = datetime.now(UTC)
    began = time.monotonic()
    sampler.start()
    try:
        # The entrypoint runs again: chpasswd for Cockpit, cockpit-ws, opencode.
        service("start", check=True)
        container = service.container()
        assert http_status(url + "/global/health", (user, password)) == 200
        assert http_status(cockpit + "/cockpit/login", ("opencoder", password)) == 200
        assert service("status", "-q").returncode == 0
        while time.monotonic() - began < WINDOW_SECONDS or len(
            health_runs_since(container, window_start)
        ) < 2:
            assert time.monotonic() - began < WINDOW_SECONDS + 30, "no health checks ran"
            code, _ = container.exec_run(
                ["/usr/local/bin/occ-entrypoint", "probe", "4"], user="opencoder"
            )
            assert code == 0  # occ's own probe, as status and start use it
            time.sleep(1)
    finally:
        sampler.stop.set()
        sampler.join(timeout=10)

    elapsed = time.monotonic() - began
    runs = health_runs_since(container, window_start)
    print(f"{sampler.scans} scans in {elapsed:.0f}s, {sampler.seen_probe} caught a probe, "
          f"{len(runs)} health checks")
    assert not sampler.leaks, f"the password showed in process arguments: {sampler.leaks[:3]}"
    # The sampler really looked: often, at the container's processes, and during probes.
    assert elapsed >= WINDOW_SECONDS
    assert sampler.scans >= 5 * elapsed, f"only {sampler.scans} scans in {elapsed:.0f}s"
    assert sampler.seen_opencode and sampler.seen_cockpit
    assert sampler.seen_probe > 0, "no scan caught a probe running"
    assert len(runs) >= 2, runs

    # Docker's health check still authenticates: healthy, with opencode's own answer.
    for entry in runs:
        assert entry["ExitCode"] == 0, entry
        # opencode's answer, then the watchdog's figures on a line of their own
        answer, figures = split_probe_output(entry["Output"])
        assert json.loads(answer)["healthy"] is True and figures is not None
    container.reload()
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    report = json.loads(service("status", "--json", check=True).stdout)
    assert report["health"] == "healthy"
    # ... and without credentials, or with wrong ones, opencode still refuses.
    assert http_status(url + "/global/health") == 401
    assert http_status(url + "/global/health", (user, "wrong-password")) == 401
