"""What a careful review asked for, on a real lab host (h6) with the service running:
secrets never in process arguments, SSH that cannot be talked into trusting any key or
lending the agent, remote text made safe for a terminal, a rotated password, drift, the
fast forwarding path, and the ways into the sandbox (exec, shell, provider callbacks).

The sandbox image is built once on this machine (the integration tests do it) and seeded
onto h6 through the lab registry.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect
import pytest
from lab_occ import OccRun, build_sandbox_here, free_port, isolated_occ, occ_argv, ok

from tests.conftest import INTERRUPTIBLE, send_ctrl_c

if TYPE_CHECKING:
    from conftest import Lab

HOST = "h6"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE = "opencode-cloud-sandbox:1.18.33"










@pytest.fixture(scope="module")
def remote(tmp_path_factory, lab: Lab):
    build_sandbox_here(tmp_path_factory.mktemp("build"))
    lab.seed_image(IMAGE, [HOST])
    with isolated_occ(tmp_path_factory.mktemp("remote")) as run:
        run.env["OCC_INSTANCE"] = f"occrf-{uuid.uuid4().hex[:6]}"
        run.container = f"{run.env['OCC_INSTANCE']}-sandbox"
        if Path(CA_BUNDLE).exists():
            ok(run("config", "set", "extra_ca_certs", CA_BUNDLE))
        ok(run("host", "add", HOST, lab.hosts[HOST].address, "-u", lab.user,
               "-i", lab.keys.plain))
        ok(run("start", "--host", HOST, timeout=600))
        yield run
        run("reset", "--volumes", "--force", "--host", HOST, timeout=300)


def password(run: OccRun) -> str:
    return json.loads(ok(run("credentials", "--host", HOST, "--json")).stdout)["password"]


class Forward:
    """``occ open --host h6 --print-url`` in the background: the web UI on a local port."""

    def __init__(self, run: OccRun, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            occ_argv("open", "--host", HOST, "--print-url", "--local-port", str(self.port)),
            env={**run.env, **(extra_env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, **INTERRUPTIBLE)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url == f"http://127.0.0.1:{self.port}", self.url

    def status(self, login: tuple[str, str] | None) -> int:
        request = urllib.request.Request(f"{self.url}/global/health")
        if login is not None:
            token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> str:
        send_ctrl_c(self.proc)
        out, err = self.proc.communicate(timeout=30)
        return out + err


def test_the_password_never_shows_in_any_process_arguments(remote: OccRun) -> None:
    """The lab hosts share this machine's processes: one sampler sees h6's dockerd, its
    containers' health checks, and occ's own ssh processes here."""
    secret = password(remote).encode()
    seen: list[str] = []
    samples = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal samples
        while not stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if secret in (entry / "cmdline").read_bytes():
                            seen.append(entry.name)
                    except OSError:
                        continue
            samples += 1
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ended = time.monotonic() + 30  # three health checks (every 10 s), and occ at work
        while time.monotonic() < ended:
            ok(remote("status", "--host", HOST))
            ok(remote("logs", "-n", "2", "--host", HOST))
    finally:
        stop.set()
        sampler.join()
    assert samples > 50
    assert seen == [], f"the password was in the arguments of pids {seen}"
    report = json.loads(ok(remote("status", "--host", HOST, "--json")).stdout)
    assert report["health"] == "healthy"  # the probe still authenticates


def test_a_forwarded_agent_is_never_lent_to_the_host(remote: OccRun, lab: Lab,
                                                     tmp_path: Path) -> None:
    from opencode_cloud.hosts.store import load_hosts
    from opencode_cloud.ssh.connection import HostConnection
    from opencode_cloud.ssh.settings import SshSettings

    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True)
    sock = re.search(r"SSH_AUTH_SOCK=([^;]+);", agent.stdout).group(1)
    pid = int(re.search(r"SSH_AGENT_PID=(\d+);", agent.stdout).group(1))
    try:
        subprocess.run(["ssh-add", lab.keys.plain], env={**os.environ, "SSH_AUTH_SOCK": sock},
                       check=True, capture_output=True)
        user_config = tmp_path / "ssh_config"
        user_config.write_text("Host *\n  ForwardAgent yes\n  ForwardX11 yes\n")
        settings = SshSettings(user_config=user_config, known_hosts=remote.known_hosts,
                               control_dir=remote.control_dir, control_persist="1m",
                               retry_delay=0.2)
        host = load_hosts(remote.hosts_file).get(HOST)
        saved = os.environ.get("SSH_AUTH_SOCK")
        os.environ["SSH_AUTH_SOCK"] = sock
        try:
            with HostConnection(host, interactive=False, settings=settings,
                                hosts_file=remote.hosts_file) as conn:
                answer = conn.run(["sh", "-c", "echo agent=${SSH_AUTH_SOCK:-none} "
                                   "display=${DISPLAY:-none}"], timeout=60)
                conn.disconnect()
        finally:
            if saved is None:
                os.environ.pop("SSH_AUTH_SOCK", None)
            else:
                os.environ["SSH_AUTH_SOCK"] = saved
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout.decode().split() == ["agent=none", "display=none"]
    finally:
        os.kill(pid, signal.SIGTERM)


def test_a_known_hosts_of_dev_null_is_refused_and_a_first_key_is_shown(
        remote: OccRun, lab: Lab, tmp_path: Path) -> None:
    with isolated_occ(tmp_path / "fresh") as fresh:
        user_config = tmp_path / "ssh_config"
        user_config.write_text("Host *\n  UserKnownHostsFile /dev/null\n")
        fresh.env.pop("OCC_SSH_KNOWN_HOSTS")
        fresh.env["OCC_SSH_CONFIG"] = str(user_config)
        r = fresh("host", "add", HOST, lab.hosts[HOST].address, "-u", lab.user, "-i",
                  lab.keys.plain)
        assert r.returncode == 1
        assert "UserKnownHostsFile /dev/null" in r.stderr and "OCC_SSH_KNOWN_HOSTS" in r.stderr
        assert not fresh.hosts_file.exists()  # nothing saved
        fresh.env["OCC_SSH_CONFIG"] = "none"
        fresh.env["OCC_SSH_KNOWN_HOSTS"] = str(fresh.known_hosts)
        r = ok(fresh("host", "add", HOST, lab.hosts[HOST].address, "-u", lab.user, "-i",
                     lab.keys.plain))
        key_file = tmp_path / "host_key.pub"
        # "ADDRESS TYPE KEY": ssh-keygen -lf reads a known_hosts line as it is.
        key_file.write_text(lab.hosts[HOST].known_hosts_line.strip() + "\n")
        expected = subprocess.run(["ssh-keygen", "-lf", str(key_file)], capture_output=True,
                                  text=True, check=True).stdout.split()[1]
        assert f"first connection to {lab.hosts[HOST].address}:22: accepted its ED25519 " \
               f"host key {expected}" in r.stderr, r.stderr
        again = ok(fresh("host", "test", HOST))
        assert "first connection" not in again.stderr  # known now


def test_remote_logs_are_made_safe_and_colours_survive_in_a_terminal(remote: OccRun) -> None:
    line = r"\033]0;pwned\007 clear:\033[2J \033[31mred\033[0m marker-$$"
    ok(remote("exec", "--host", HOST, "--user", "root", "--", "sh", "-c",
              f"printf '{line}\\n' > /proc/1/fd/1"))
    plain = ok(remote("logs", "-n", "20", "--host", HOST)).stdout
    marked = [text for text in plain.splitlines() if "marker-" in text]
    assert marked, plain
    assert "\\x1b]0;pwned\\x07" in marked[-1] and "\\x1b[2J" in marked[-1]
    assert "\x1b" not in plain and "\x07" not in plain
    assert "red" in marked[-1]  # colours off (not a terminal): the text alone
    child = pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "logs", "-n", "20", "--host",
                                           HOST],
                          env={k: v for k, v in remote.env.items() if k != "NO_COLOR"},
                          timeout=60)
    child.expect(pexpect.EOF)
    out = child.before.decode(errors="replace")
    assert "\x1b[31mred" in out  # colour in a terminal
    assert "\x1b]0;pwned" not in out and "\x1b[2J" not in out
    assert "\\x1b]0;pwned\\x07" in out


def test_credentials_rotate_stops_the_old_password_and_keeps_the_workspace(
        remote: OccRun) -> None:
    ok(remote("exec", "--host", HOST, "--", "sh", "-c",
              "echo kept > ~/workspace/rotate-check.txt"))
    old = password(remote)
    r = remote("credentials", "--rotate", "--host", HOST)
    assert r.returncode == 1 and "--yes" in r.stderr  # asks first; no terminal here
    assert password(remote) == old
    r = ok(remote("credentials", "--rotate", "--yes", "--host", HOST, timeout=300))
    new = password(remote)
    assert new != old and new in r.stdout
    forward = Forward(remote)
    try:
        assert forward.status(("opencode", old)) == 401
        assert forward.status(("opencode", new)) == 200
        assert forward.status(None) == 401
    finally:
        forward.stop()
    kept = ok(remote("exec", "--host", HOST, "--", "cat", "rotate-check.txt"))  # in ~/workspace
    assert kept.stdout.strip() == "kept"


def test_drift_lists_a_changed_setting_until_restart_applies_it(remote: OccRun) -> None:
    before = json.loads(ok(remote("status", "--host", HOST, "--json")).stdout)
    assert before["drift"] == [], before["drift"]
    port = free_port()
    ok(remote("host", "edit", HOST, "--set", f"opencode_web_port={port}"))
    try:
        report = json.loads(ok(remote("status", "--host", HOST, "--json")).stdout)
        assert {"key": "opencode_web_port", "running": before["ports"]["3000/tcp"][1],
                "configured": port} in report["drift"], report["drift"]
        human = remote("status", "--host", HOST)
        assert "opencode_web_port runs" in human.stderr
        assert f"occ restart --host {HOST}" in human.stdout
        ok(remote("restart", "--host", HOST, timeout=300))
        after = json.loads(ok(remote("status", "--host", HOST, "--json")).stdout)
        assert after["drift"] == [] and after["ports"]["3000/tcp"][1] == port
    finally:
        ok(remote("host", "edit", HOST, "--unset", "opencode_web_port"))
        ok(remote("restart", "--host", HOST, timeout=300))


def test_the_fast_forwarding_path_is_used_and_the_fallback_works(remote: OccRun,
                                                                  monkeypatch) -> None:
    from opencode_cloud.engine.probe import query_engine
    from opencode_cloud.hosts.store import load_hosts
    from opencode_cloud.ssh import mux
    from opencode_cloud.ssh.connection import HostConnection
    from opencode_cloud.ssh.settings import SshSettings

    settings = SshSettings(user_config=None, known_hosts=remote.known_hosts,
                           control_dir=remote.control_dir, control_persist="1m",
                           retry_delay=0.2)
    host = load_hosts(remote.hosts_file).get(HOST)
    with HostConnection(host, interactive=False, settings=settings,
                        hosts_file=remote.hosts_file) as conn:
        assert query_engine(conn.docker_forward("/var/run/docker.sock")) is not None
        assert conn.forward_paths == ["mux"]  # PROTOCOL.mux against the real master
    calls: list[str] = []

    def broken(*args, **kwargs):
        calls.append("mux")
        raise mux.MuxError("made to fail by the test")

    monkeypatch.setattr(mux, "unix_forward", broken)
    with HostConnection(host, interactive=False, settings=settings,
                        hosts_file=remote.hosts_file) as conn:
        assert query_engine(conn.docker_forward("/var/run/docker.sock")) is not None
        assert conn.forward_paths == ["ssh -O"] and calls
    assert not list(remote.control_dir.glob("*.docker.sock"))  # both closed


def test_exec_keeps_its_streams_and_status_and_a_shell_follows_the_window(
        remote: OccRun) -> None:
    r = remote("exec", "--host", HOST, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = subprocess.run(occ_argv("exec", "--host", HOST, "--", "sh", "-c", "read x; echo +$x"),
                       env=remote.env, input="fed\n", capture_output=True, text=True,
                       timeout=60)
    assert r.stdout == "+fed\n"
    assert remote("exec", "--host", HOST).returncode == 2  # no command: a usage error
    child = pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "shell", "--host", HOST],
                          env=remote.env, timeout=60, dimensions=(30, 100), encoding="utf-8")
    child.expect(r"\$ ")
    child.sendline("stty size; whoami")
    child.expect(r"30 100\s+opencoder")
    child.setwinsize(40, 120)
    time.sleep(0.5)
    child.sendline("stty size")
    child.expect("40 120")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_a_provider_callback_reaches_the_sandbox_during_occ_open(remote: OccRun) -> None:
    port = free_port()
    ok(remote("config", "set", "oauth_callback_ports", json.dumps([port])))
    # A real listener on the sandbox's own loopback: a second opencode server on that port.
    server = subprocess.Popen(occ_argv("exec", "--host", HOST, "--", "sh", "-c",
                                       f"cd /tmp && exec opencode serve --hostname 127.0.0.1 "
                                       f"--port {port}"),
                              env=remote.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    forward = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = remote("exec", "--host", HOST, "--", "bash", "-c",
                           f"exec 3<>/dev/tcp/127.0.0.1/{port}")
            if probe.returncode == 0:
                break
            time.sleep(1)
        forward = Forward(remote)
        time.sleep(1)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/global/health",
                                        timeout=20) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status in (200, 401)  # opencode answered (with auth on: 401 without a login)
    finally:
        said = forward.stop() if forward is not None else ""
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
        ok(remote("config", "set", "oauth_callback_ports", "[1455, 8085]"))
    assert f"127.0.0.1:{port} here reach the sandbox" in said


def status_of(run: OccRun) -> dict:
    return json.loads(ok(run("status", "--host", HOST, "--json")).stdout)


def wait_for(run: OccRun, check, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        report = status_of(run)
        if check(report) or time.monotonic() > deadline:
            return report
        time.sleep(3)


def test_a_process_past_the_memory_limit_shows_as_oom_killed_and_restarted(
        remote: OccRun) -> None:
    ok(remote("host", "edit", HOST, "--set", "memory_limit=600m"))
    try:
        ok(remote("restart", "--host", HOST, timeout=300))
        before = status_of(remote)["restarts"]
        r = remote("exec", "--host", HOST, "--", "sh", "-c", "head -c 2000m /dev/zero | tail")
        assert r.returncode == 137  # the allocating process was killed
        report = wait_for(remote, lambda rep: rep["restarts"] > before
                          and rep["health"] == "healthy", 90)
        assert report["restarts"] == before + 1, report
        assert report["last_restart_reason"] == "OOM-killed", report
        assert report["memory"]["limit_bytes"] == 600 * 2**20
        human = ok(remote("status", "--host", HOST)).stdout
        assert "(last: OOM-killed)" in human
    finally:
        ok(remote("host", "edit", HOST, "--unset", "memory_limit"))
        ok(remote("restart", "--host", HOST, timeout=300))


def test_a_wedged_opencode_is_restarted_by_the_watchdog(remote: OccRun, lab_docker) -> None:
    """SIGSTOP: the port stays open and nothing answers, as with the upstream wedges."""
    before = status_of(remote)["restarts"]
    stopped = ok(remote("exec", "--host", HOST, "--user", "root", "--", "sh", "-c",
                        'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = opencode ]'
                        ' && kill -STOP ${p#/proc/} && echo ${p#/proc/}; done; true'))
    assert stopped.stdout.split(), "no opencode process found to stop"
    started = time.monotonic()
    report = wait_for(remote, lambda rep: rep["restarts"] > before
                      and rep["health"] == "healthy", 120)
    took = time.monotonic() - started
    logs = lab_docker(HOST).containers.get(remote.container).logs(tail=30).decode(errors="replace")
    assert report["restarts"] == before + 1 and report["health"] == "healthy", (report, logs)
    assert report["last_restart_reason"].startswith("unhealthy"), report
    assert took < 90, took
    print(f"\nwatchdog: healthy again {took:.0f} s after SIGSTOP")


def test_the_service_comes_back_after_the_engine_restarts_and_a_stopped_one_stays_stopped(
        remote: OccRun, lab: Lab, lab_docker) -> None:
    ok(remote("exec", "--host", HOST, "--", "sh", "-c",
              "echo survived > ~/workspace/reboot-check.txt"))
    lab.control("dockerd-stop", HOST)
    lab.control("dockerd-start", HOST)
    report = wait_for(remote, lambda rep: rep["health"] == "healthy", 120)
    assert report["state"] == "running" and report["health"] == "healthy", report
    kept = ok(remote("exec", "--host", HOST, "--", "cat", "reboot-check.txt"))  # in ~/workspace
    assert kept.stdout.strip() == "survived"
    ok(remote("stop", "--host", HOST))
    lab.control("dockerd-stop", HOST)
    lab.control("dockerd-start", HOST)
    time.sleep(5)
    assert lab_docker(HOST).containers.get(remote.container).status == "exited"
    ok(remote("start", "--host", HOST, timeout=300))
