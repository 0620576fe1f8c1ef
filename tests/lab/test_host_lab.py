"""`occ host` and the SSH layer against the lab's real hosts (sshd + dockerd each).

Every test gets its own hosts.json, known_hosts, control folder and no ssh-agent, and runs
occ as a subprocess; afterwards it checks that no ssh process of occ survived but the
master connections (and their jump processes), and that `host disconnect` ends those too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pexpect
from lab_occ import OccRun, ssh_processes

from tests.conftest import send_ctrl_c

if TYPE_CHECKING:
    from conftest import Lab


def add_args(lab: Lab, name: str, target: str, key: str | None = None) -> list[str]:
    h = lab.hosts[target]
    return ["host", "add", name, h.address, "-u", lab.user, "-i", key or lab.keys.plain]


def test_add_verifies_and_reports_docker_version(occ: OccRun, lab: Lab, lab_docker) -> None:
    r = occ(*add_args(lab, "h1", "h1"))
    assert r.returncode == 0, r.stderr
    version = lab_docker("h1").version()["Version"]
    assert f"[h1] Docker: server {version}" in r.stdout
    assert "[h1] OS: Debian GNU/Linux 12" in r.stdout
    assert "new connection" in r.stdout
    assert occ.hosts()["hosts"]["h1"]["user"] == lab.user
    assert occ.knows_key_of(lab.hosts["h1"].address)  # accepted on first use
    assert len(occ.masters()) == 1

    # Later commands reuse the master: no new connection, no new master process.
    (pid_before,) = occ.masters()
    report = json.loads(occ("host", "test", "h1", "--json").stdout)
    assert report["ssh"]["new_connection"] is False
    assert report["docker"]["server_version"] == version
    assert report["docker"]["socket_usable"] is True
    assert list(occ.masters()) == [pid_before]
    assert occ("-q", "host", "test", "h1").stdout == ""

    r = occ("host", "disconnect", "h1")
    assert r.returncode == 0 and "connection closed" in r.stdout
    occ.assert_no_ssh()
    assert "no open connection" in occ("host", "disconnect", "h1").stdout


def test_jump_only_host_with_only_the_key_file(occ: OccRun, lab: Lab) -> None:
    h1, h3 = lab.hosts["h1"], lab.hosts["h3"]
    assert h3.jump_only and h3.reach_via == "h1"
    assert "SSH_AUTH_SOCK" not in occ.env and occ.env["OCC_SSH_CONFIG"] == "none"
    # Directly, h3 refuses (the lab blocks the path): 3 retries, then nothing saved.
    fast = dict(occ.env, OCC_SSH_RETRY_DELAY="0.1")
    r = subprocess.run([sys.executable, "-m", "opencode_cloud", *add_args(lab, "h3", "h3")],
                       env=fast, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "(3/3)" in r.stderr
    assert occ.hosts() == {}
    # Through h1 with -J: the jump hop gets the same key and host-key policy.
    r = occ(*add_args(lab, "h3", "h3"), "-J", f"{lab.user}@{h1.address}")
    assert r.returncode == 0, r.stderr
    assert "[h3] Docker: server" in r.stdout
    # both hops accepted on first use, into the same known_hosts
    assert occ.knows_key_of(h1.address) and occ.knows_key_of(h3.address)
    hops = [argv for _pid, argv in ssh_processes(occ.control_dir) if "-W" in argv]
    assert hops, "the jump connection belongs to the master"
    assert occ("host", "test", "h3").returncode == 0
    occ("host", "disconnect", "h3")
    occ.assert_no_ssh()


def test_passphrase_key_prompts_once_in_a_terminal(occ: OccRun, lab: Lab) -> None:
    argv = ["-m", "opencode_cloud", *add_args(lab, "hp", "h1", key=lab.keys.passphrase)]
    child = pexpect.spawn(sys.executable, argv, env=occ.env, timeout=60, encoding="utf-8")
    child.expect("Enter passphrase for key")
    child.sendline(lab.keys.passphrase_text)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Added host 'hp'" in child.before
    assert "passphrase" not in child.before.lower()  # asked once: nothing after the answer
    # The next command, in a terminal too, reuses the master: no prompt at all.
    child = pexpect.spawn(sys.executable, ["-m", "opencode_cloud", "host", "test", "hp"],
                          env=occ.env, timeout=60, encoding="utf-8")
    index = child.expect(["Enter passphrase", pexpect.EOF])
    output = child.before
    child.close()
    assert index == 1 and child.exitstatus == 0, output
    assert "reused the open connection" in output
    occ.assert_only_masters()


def test_passphrase_key_fails_fast_without_a_terminal(occ: OccRun, lab: Lab) -> None:
    started = time.monotonic()
    r = occ(*add_args(lab, "hp", "h1", key=lab.keys.passphrase))
    elapsed = time.monotonic() - started
    assert r.returncode == 1
    assert elapsed < 5, elapsed
    assert "needs its passphrase and there is no terminal" in r.stderr
    assert f"ssh-add {lab.keys.passphrase}" in r.stderr
    assert "retrying" not in r.stderr
    assert occ.hosts() == {}


def test_unreachable_fails_after_three_announced_retries(occ: OccRun, lab: Lab) -> None:
    proc = occ.popen("host", "add", "gone", lab.unreachable_address, "-u", lab.user,
                     "-i", lab.keys.plain)
    lines: list[tuple[float, str]] = []
    started = time.monotonic()
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((time.monotonic() - started, line.rstrip()))
    proc.wait(timeout=60)
    assert proc.returncode == 1
    retries = [(t, ln) for t, ln in lines if "retrying in" in ln]
    assert [re.sub(r"^.*retrying in ", "", ln) for _, ln in retries] == [
        "1s (1/3)", "2s (2/3)", "4s (3/3)"]
    assert all(ln.startswith("[gone] ") and "connection refused" in ln for _, ln in retries)
    error_at = next(t for t, ln in lines if "Error:" in ln)
    gaps = [retries[1][0] - retries[0][0], retries[2][0] - retries[1][0],
            error_at - retries[2][0]]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9 and gaps[2] >= 3.9, gaps
    assert gaps[0] < gaps[1] < gaps[2]
    assert any("Error: cannot reach" in ln and "(after 3 retries)" in ln for _, ln in lines)
    assert occ.hosts() == {}
    occ.assert_no_ssh()


def test_wrong_key_fails_fast_without_retrying(occ: OccRun, lab: Lab) -> None:
    started = time.monotonic()
    r = occ(*add_args(lab, "hw", "h1", key=lab.keys.unauthorized))
    elapsed = time.monotonic() - started
    assert r.returncode == 1
    assert elapsed < 2, elapsed
    assert "retrying" not in r.stderr
    assert f"refused the key {lab.keys.unauthorized}" in r.stderr
    assert "authorized_keys" in r.stderr
    assert occ.hosts() == {}
    occ.assert_no_ssh()


def test_changed_host_key_is_refused(occ: OccRun, lab: Lab) -> None:
    h1, h2 = lab.hosts["h1"], lab.hosts["h2"]
    # known_hosts says h1 has h2's key: what a man in the middle would look like.
    occ.known_hosts.write_text(h2.known_hosts_line.replace(h2.address, h1.address, 1) + "\n")
    r = occ(*add_args(lab, "h1", "h1"))
    assert r.returncode == 1
    assert f"host key of {h1.address} has CHANGED" in r.stderr
    assert "man-in-the-middle" in r.stderr
    assert f"ssh-keygen -R '{h1.address}' -f {occ.known_hosts}" in r.stderr
    assert "retrying" not in r.stderr
    assert occ.hosts() == {}
    # The same for a host already saved (added before the key changed).
    occ.known_hosts.write_text("")
    assert occ(*add_args(lab, "h1", "h1")).returncode == 0
    occ("host", "disconnect", "h1")
    occ.known_hosts.write_text(h2.known_hosts_line.replace(h2.address, h1.address, 1) + "\n")
    r = occ("host", "test", "h1")
    assert r.returncode == 1 and "[h1] Error: the host key" in r.stderr
    occ.assert_no_ssh()


def test_settings_come_from_the_users_ssh_config(occ: OccRun, lab: Lab) -> None:
    user_config = occ.tmp / "ssh_config"
    user_config.write_text(
        f"Host web1\n  HostName {lab.hosts['h1'].address}\n  User {lab.user}\n"
        f"  IdentityFile {lab.keys.plain}\n  IdentitiesOnly yes\n")
    occ.env["OCC_SSH_CONFIG"] = str(user_config)
    r = occ("host", "add", "web1", "web1")
    assert r.returncode == 0, r.stderr
    assert occ.hosts()["hosts"]["web1"] == {
        "hostname": "web1", "port": None, "identity_file": None, "jump_host": None,
        "groups": [], "description": None}
    shown = json.loads(occ("host", "show", "web1", "--json").stdout)["effective"]
    assert shown["hostname"] == {"value": lab.hosts["h1"].address, "source": "ssh_config"}
    # (ssh -G cannot tell a User equal to the local login name from the default)
    import getpass

    expected = "default" if getpass.getuser() == lab.user else "ssh_config"
    assert shown["user"] == {"value": lab.user, "source": expected}
    assert shown["port"] == {"value": 22, "source": "default"}
    assert lab.keys.plain in shown["identity_file"]["value"]


def test_docker_problems_have_their_own_messages(occ: OccRun, lab: Lab) -> None:
    assert occ(*add_args(lab, "h2", "h2")).returncode == 0
    r = occ("host", "add", "nd", lab.hosts["h2"].address, "-u", lab.nodocker_user,
            "-i", lab.keys.plain)
    assert r.returncode == 0, r.stderr  # SSH works: saved, with the problem and its fix
    assert f"{lab.nodocker_user} may not use the Docker socket" in r.stderr
    assert f"usermod -aG docker {lab.nodocker_user}" in r.stdout
    r = occ("host", "test", "nd")
    assert r.returncode == 1 and "[nd] Error:" in r.stderr and "may not use" in r.stderr

    lab.control("dockerd-stop", "h2")
    try:
        r = occ("host", "test", "h2")
        assert r.returncode == 1
        assert "[h2] Error: Docker is installed but its daemon is not running" in r.stderr
        assert "systemctl" in r.stderr
    finally:
        lab.control("dockerd-start", "h2")
    assert occ("host", "test", "h2").returncode == 0


def test_sshd_down_is_a_connection_problem(occ: OccRun, lab: Lab) -> None:
    assert occ(*add_args(lab, "h2", "h2"), "--no-verify").returncode == 0
    lab.control("sshd-stop", "h2")
    try:
        occ.env["OCC_SSH_RETRY_DELAY"] = "0.1"
        r = occ("host", "test", "h2")
        assert r.returncode == 1
        assert r.stderr.count("retrying in") == 3
        assert "cannot reach" in r.stderr and "Hint:" in r.stderr
    finally:
        lab.control("sshd-start", "h2")
    assert occ("host", "test", "h2").returncode == 0


def test_ctrl_c_during_a_handshake_ends_ssh(occ: OccRun) -> None:
    """A server that accepts TCP and never answers: ssh waits; Ctrl-C must end it."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        proc = occ.popen("host", "add", "mute", "127.0.0.1", "-p", str(port))
        deadline = time.monotonic() + 10
        while not ssh_processes(occ.control_dir):
            assert time.monotonic() < deadline, "ssh never started"
            time.sleep(0.05)
        time.sleep(0.3)
        send_ctrl_c(proc)
        proc.wait(timeout=30)
        assert proc.returncode == 130
        occ.assert_no_ssh()
    assert occ.hosts() == {}


def test_handshake_timeout_is_retried_and_the_timeout_is_yours(occ: OccRun) -> None:
    """ConnectTimeout is a default after the user's config: the user's value wins."""
    import socket

    user_config = occ.tmp / "ssh_config"
    user_config.write_text("Host *\n  ConnectTimeout 1\n")
    occ.env.update(OCC_SSH_CONFIG=str(user_config), OCC_SSH_RETRY_DELAY="0.1")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        r = occ("host", "add", "mute", "127.0.0.1", "-p", str(silent.getsockname()[1]))
    assert r.returncode == 1
    assert r.stderr.count("timed out, retrying in") == 3, r.stderr
    assert time.monotonic() - started < 15
    assert occ.hosts() == {}


def test_ctrl_c_ends_every_ssh_process(occ: OccRun, lab: Lab) -> None:
    proc = occ.popen("host", "add", "gone", lab.unreachable_address, "-u", lab.user,
                     "-i", lab.keys.plain)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "retrying in" in first
    send_ctrl_c(proc)
    proc.wait(timeout=30)
    assert proc.returncode == 130
    occ.assert_no_ssh()
    assert occ.hosts() == {}


def test_connection_api_for_the_next_issue(occ: OccRun, lab: Lab) -> None:
    """HostConnection: run (quoted argv), forwarded Docker socket, close, disconnect."""
    from opencode_cloud.engine.probe import query_engine
    from opencode_cloud.hosts import store

    assert occ(*add_args(lab, "h1", "h1"), "--no-verify").returncode == 0
    saved = {k: os.environ.get(k) for k in occ.env}
    os.environ.update(occ.env)
    os.environ.pop("SSH_AUTH_SOCK", None)
    try:
        from opencode_cloud.ssh.connection import HostConnection

        host = store.resolve_host("h1")
        with HostConnection(host, interactive=False) as conn:
            assert conn.ensure_master() is True
            assert conn.ensure_master() is False
            result = conn.run(["printf", "%s|", "a b", "$(id)", "it's"])
            assert (result.returncode, result.stdout) == (0, b"a b|$(id)|it's|")
            assert conn.run("exit 3").returncode == 3
            local = str(occ.control_dir / "api-test.sock")
            conn.forward_unix_socket(local, "/var/run/docker.sock")
            answer = query_engine(local)
            assert answer is not None and answer["ApiVersion"]
            assert conn.master_pid() in occ.masters()
        assert not os.path.exists(local)  # close() cancelled the forward
        occ.assert_only_masters()
        assert HostConnection(host, interactive=False).disconnect() is True
        occ.assert_no_ssh()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_every_command_leaves_only_the_master(occ: OccRun, lab: Lab) -> None:
    h1 = lab.hosts["h1"]
    assert occ(*add_args(lab, "h1", "h1")).returncode == 0
    assert occ(*add_args(lab, "h3", "h3"), "-J", f"{lab.user}@{h1.address}").returncode == 0
    masters = set(occ.masters())
    for argv in (["host", "test", "h1"], ["host", "test", "h3"], ["host", "show", "h3"],
                 ["host", "list"], ["host", "edit", "h1", "-d", "edited", "--add-group", "g"],
                 ["host", "test", "h1"], ["-q", "host", "test", "h3"]):
        r = occ(*argv)  # checks processes after each call
        assert r.returncode == 0, (argv, r.stderr)
    assert set(occ.masters()) == masters  # a description or group keeps the connection
    assert len(occ.masters()) == 2
    # A new port means a new connection: the old master is closed, not left behind.
    masters_before = set(occ.masters())
    assert occ("host", "edit", "h1", "-p", "22").returncode == 0
    assert len(occ.masters()) == 1 and set(occ.masters()) < masters_before
    assert occ("host", "test", "h1").returncode == 0
    assert len(occ.masters()) == 2
    # Threads of a failing command do not linger either.
    assert occ(*add_args(lab, "bad", "h2", key=lab.keys.unauthorized)).returncode == 1
    r = occ("host", "disconnect", "--all")
    assert "Closed 2 connections." in r.stdout
    occ.assert_no_ssh()
    assert not list(occ.control_dir.glob("*.sock"))
    # remove closes the host's master first
    assert occ("host", "test", "h1").returncode == 0
    assert len(occ.masters()) == 1
    assert occ("host", "remove", "h1", "-f").returncode == 0
    occ.assert_no_ssh()


def test_concurrent_commands_share_one_master(occ: OccRun, lab: Lab) -> None:
    assert occ(*add_args(lab, "h1", "h1"), "--no-verify").returncode == 0
    results: list[int] = []

    def run() -> None:
        results.append(occ("host", "test", "h1", check_processes=False).returncode)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [0] * 5
    assert len(occ.masters()) == 1
    occ.assert_only_masters()
