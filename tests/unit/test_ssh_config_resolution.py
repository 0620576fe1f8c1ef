"""The generated config as the real OpenSSH client reads it (``ssh -G``: no network)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from opencode_cloud.cli.commands.host.listing import effective_values
from opencode_cloud.hosts.model import Host, HostConfig
from opencode_cloud.ssh.connection import HostConnection, parse_resolved
from opencode_cloud.ssh.settings import SshSettings, ensure_control_dir, load_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _real_ssh_client() -> None:
    # Never a skip: scripts/test installs openssh-client, so a missing one is a failure.
    if shutil.which("ssh") is None:
        pytest.fail("these tests need the OpenSSH client 'ssh' on PATH "
                    "(scripts/test installs openssh-client)", pytrace=False)

USER_CONFIG = """\
Host web1
  HostName 10.1.1.1
  Port 2200
  User bob
  IdentityFile ~/.ssh/id_bob
  ProxyJump ops@bastion
  StrictHostKeyChecking no
  PasswordAuthentication yes
  ConnectTimeout 3
"""


@pytest.fixture
def conn_factory(tmp_path: Path):
    user_config = tmp_path / "ssh_config"
    user_config.write_text(USER_CONFIG)
    control = Path(f"/tmp/occ-unit-{os.getpid()}")
    settings = SshSettings(user_config=user_config, known_hosts=tmp_path / "known_hosts",
                           control_dir=control, control_persist="1m", retry_delay=0)

    def make(name: str = "web1", **fields: object) -> HostConnection:
        config = HostConfig.from_dict({"hostname": name, **fields})
        return HostConnection(Host(name, config), interactive=False, settings=settings,
                              hosts_file=tmp_path / "hosts.json")

    yield make
    shutil.rmtree(control, ignore_errors=True)


def test_users_config_fills_what_hosts_json_leaves_open(conn_factory) -> None:
    conn = conn_factory()
    resolved = conn.resolved_config()
    assert resolved["hostname"] == ["10.1.1.1"]
    assert resolved["port"] == ["2200"]
    assert resolved["user"] == ["bob"]
    assert resolved["proxyjump"] == ["ops@bastion"]
    assert resolved["connecttimeout"] == ["3"]  # a default the user may override
    # ...but never occ's forced policy:
    assert resolved["stricthostkeychecking"] == ["accept-new"]
    assert resolved["passwordauthentication"] == ["no"]
    assert resolved["batchmode"] == ["yes"]
    rows = {r["field"]: r for r in effective_values(conn.host.config, resolved,
                                                    conn.resolved_config(baseline=True))}
    assert rows["hostname"] == {"field": "hostname", "value": "10.1.1.1", "source": "ssh_config"}
    assert rows["port"]["source"] == "ssh_config" and rows["port"]["value"] == 2200
    assert rows["user"]["source"] == "ssh_config"
    assert rows["jump_host"]["value"] == "ops@bastion"


def test_hosts_json_beats_the_users_config(conn_factory, tmp_path: Path) -> None:
    key = tmp_path / "id_occ"
    key.write_text("x")
    conn = conn_factory(user="alice", port=2222, jump_host="j@jump:22",
                        identity_file=str(key))
    resolved = conn.resolved_config()
    assert resolved["user"] == ["alice"]
    assert resolved["port"] == ["2222"]
    assert resolved["proxyjump"] == ["j@jump:22"]
    assert resolved["identityfile"][0] == str(key)  # tried first
    assert resolved["identitiesonly"] == ["yes"]
    rows = {r["field"]: r for r in effective_values(conn.host.config, resolved,
                                                    conn.resolved_config(baseline=True))}
    assert {r["source"] for f, r in rows.items() if f != "hostname"} == {"hosts.json"}


def test_unknown_host_gets_defaults(conn_factory) -> None:
    conn = conn_factory("other.example")
    resolved = conn.resolved_config()
    rows = {r["field"]: r for r in effective_values(conn.host.config, resolved,
                                                    conn.resolved_config(baseline=True))}
    assert rows["port"] == {"field": "port", "value": 22, "source": "default"}
    assert rows["jump_host"]["value"] is None
    assert resolved["connecttimeout"] == ["10"]


def test_generated_files_are_private(conn_factory) -> None:
    conn = conn_factory()
    conn.prepare()
    folder = conn.settings.control_dir
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (conn.files.config_file, conn.files.batch_config_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_parse_resolved() -> None:
    assert parse_resolved("user bob\nidentityfile a\nidentityfile b\n") == {
        "user": ["bob"], "identityfile": ["a", "b"]}


def test_control_dir_must_be_ours(tmp_path: Path) -> None:
    from opencode_cloud.errors import ConfigError

    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="not a plain folder"):
        ensure_control_dir(link)
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    ensure_control_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from opencode_cloud.errors import ConfigError

    for name in ("OCC_SSH_CONFIG", "OCC_SSH_KNOWN_HOSTS", "OCC_SSH_CONTROL_DIR",
                 "OCC_SSH_CONTROL_PERSIST", "OCC_SSH_RETRY_DELAY", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.user_config is not None and s.user_config.name == "config"
    assert s.known_hosts is None
    assert s.control_dir == Path(f"/tmp/occ-{os.getuid()}")
    assert (s.control_persist, s.retry_delay) == ("10m", 1.0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert load_settings().control_dir == Path("/run/user/1000/occ")
    monkeypatch.setenv("OCC_SSH_CONFIG", "none")
    monkeypatch.setenv("OCC_SSH_KNOWN_HOSTS", str(tmp_path / "kh"))
    monkeypatch.setenv("OCC_SSH_CONTROL_PERSIST", "90s")
    monkeypatch.setenv("OCC_SSH_RETRY_DELAY", "0.25")
    s = load_settings()
    assert s.user_config is None and s.known_hosts == tmp_path / "kh"
    assert (s.control_persist, s.retry_delay) == ("90s", 0.25)
    for name, bad in (("OCC_SSH_CONTROL_PERSIST", "0"), ("OCC_SSH_CONTROL_PERSIST", "no"),
                      ("OCC_SSH_RETRY_DELAY", "x"), ("OCC_SSH_CONTROL_DIR", "/" + "d" * 90),
                      ("OCC_SSH_KNOWN_HOSTS", "/a b")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ConfigError):
            load_settings()
        monkeypatch.delenv(name)


def test_forwarding_the_agent_or_x11_cannot_be_turned_on_by_the_users_config(
        conn_factory, tmp_path: Path) -> None:
    (tmp_path / "ssh_config").write_text("Host *\n  ForwardAgent yes\n  ForwardX11 yes\n")
    resolved = conn_factory("web1").resolved_config()
    assert resolved["forwardagent"] == ["no"] and resolved["forwardx11"] == ["no"]


def test_a_known_hosts_of_dev_null_is_found_and_names_the_key(conn_factory,
                                                               tmp_path: Path) -> None:
    from opencode_cloud.ssh.config import host_key_policy_problem, known_hosts_names

    resolved = conn_factory("web1").resolved_config()  # StrictHostKeyChecking no: forced off
    assert resolved["stricthostkeychecking"] == ["accept-new"]
    assert host_key_policy_problem(resolved) is None
    files, name = known_hosts_names(resolved)
    assert files == [str(tmp_path / "known_hosts")] and name == "[10.1.1.1]:2200"
    assert host_key_policy_problem({"userknownhostsfile": ["/dev/null"]}) == \
        "UserKnownHostsFile /dev/null"
    assert host_key_policy_problem({"userknownhostsfile": ["/dev/null /dev/null"]})
    assert host_key_policy_problem({"userknownhostsfile": ["/dev/null ~/.ssh/kh"]}) is None
    assert host_key_policy_problem({"stricthostkeychecking": ["false"]})


def test_a_users_known_hosts_of_dev_null_is_refused_before_connecting(
        conn_factory, tmp_path: Path) -> None:
    from opencode_cloud.ssh.errors import Problem, SshError
    from opencode_cloud.ssh.settings import SshSettings

    user_config = tmp_path / "ssh_config"
    user_config.write_text("Host *\n  UserKnownHostsFile /dev/null\n")
    settings = SshSettings(user_config=user_config, known_hosts=None,
                           control_dir=Path(f"/tmp/occ-unit-{os.getpid()}"),
                           control_persist="1m", retry_delay=0)
    conn = HostConnection(Host("web9", HostConfig.from_dict({"hostname": "192.0.2.9"})),
                          interactive=False, settings=settings,
                          hosts_file=tmp_path / "hosts.json")
    with pytest.raises(SshError) as info:
        conn.ensure_master()
    assert info.value.problem is Problem.CONFIG
    assert "UserKnownHostsFile /dev/null" in info.value.message
    assert "OCC_SSH_KNOWN_HOSTS" in (info.value.hint or "")
