"""The generated ssh config and every ssh argv, built by pure functions."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from opencode_cloud.hosts.model import Host, HostConfig
from opencode_cloud.ssh import argv as build
from opencode_cloud.ssh.config import host_files, host_key, render_ssh_config
from opencode_cloud.ssh.settings import MAX_CONTROL_DIR, SshSettings

pytestmark = pytest.mark.unit

SETTINGS = SshSettings(user_config=Path("/home/u/.ssh/config"), known_hosts=None,
                       control_dir=Path("/tmp/occ-1000"), control_persist="10m",
                       retry_delay=1.0)


def host(**fields: object) -> Host:
    return Host("web1", HostConfig.from_dict({"hostname": "web1.example.com", **fields}))


def target(h: Host, batch: bool = True) -> build.SshTarget:
    files = host_files(h, SETTINGS, Path("/home/u/.config/opencode-cloud/hosts.json"))
    return build.SshTarget.for_host(h, files, batch=batch, control_persist="10m")


def test_minimal_host_leaves_everything_to_ssh_config() -> None:
    t = target(host())
    argv = build.ssh_argv(t, ["docker", "ps"])
    assert argv[:3] == ["ssh", "-F", str(t.config_file)]
    assert argv[-3:] == ["--", "web1.example.com", "docker ps"]
    assert "-l" not in argv and "-p" not in argv and "-J" not in argv
    assert f"ControlPath={t.control_path}" in argv


def test_full_host_on_the_command_line_before_the_destination() -> None:
    t = target(host(user="deploy", port=2222, jump_host="ops@bastion:2200"))
    argv = build.ssh_argv(t, "true")
    dash = argv.index("--")
    head = argv[:dash]
    assert head[head.index("-l") + 1] == "deploy"
    assert head[head.index("-p") + 1] == "2222"
    assert head[head.index("-J") + 1] == "ops@bastion:2200"
    assert argv[dash + 1:] == ["web1.example.com", "true"]


def test_remote_argv_is_quoted_word_by_word() -> None:
    t = target(host())
    nasty = ["echo", "a b", "$(id)", "x;rm -rf /", "it's"]
    command = build.ssh_argv(t, nasty)[-1]
    assert shlex.split(command) == nasty


def test_master_check_exit_forward() -> None:
    t = target(host())
    master = build.master_argv(t)
    assert {"ControlMaster=yes", "ControlPersist=10m", "StreamLocalBindUnlink=yes"} <= set(master)
    assert master[-4:] == ["-N", "-f", "--", "web1.example.com"]
    assert build.check_argv(t)[-4:] == ["-O", "check", "--", "web1.example.com"]
    assert build.exit_argv(t)[-4:] == ["-O", "exit", "--", "web1.example.com"]
    fwd = build.forward_argv(t, "/tmp/occ-1000/d.sock", "/var/run/docker.sock")
    assert fwd[-6:] == ["-O", "forward", "-L", "/tmp/occ-1000/d.sock:/var/run/docker.sock",
                        "--", "web1.example.com"]
    cancel = build.cancel_forward_argv(t, "/tmp/occ-1000/d.sock", "/var/run/docker.sock")
    assert cancel[-6:-4] == ["-O", "cancel"]


def test_resolve_argv() -> None:
    t = target(host(port=2))
    assert build.resolve_argv(t) == ["ssh", "-G", "-F", str(t.config_file), "-p", "2", "--",
                                     "web1.example.com"]
    assert build.baseline_resolve_argv("w") == ["ssh", "-G", "-F", "/dev/null", "--", "w"]


def test_batch_and_interactive_use_separate_config_files() -> None:
    h = host()
    assert target(h, batch=True).config_file != target(h, batch=False).config_file
    assert target(h, batch=True).control_path == target(h, batch=False).control_path


def test_control_socket_fits_in_sun_path() -> None:
    t = target(host())
    assert len(t.control_path.name) == 24
    assert MAX_CONTROL_DIR + 1 + 24 + 17 < 104


def test_key_changes_with_the_entry_the_file_and_settings() -> None:
    h = host()
    base = host_key(h, SETTINGS, Path("/a/hosts.json"))
    assert base == host_key(h, SETTINGS, Path("/a/hosts.json"))
    assert base != host_key(host(port=2), SETTINGS, Path("/a/hosts.json"))
    assert base != host_key(host(docker_socket="/run/d.sock"), SETTINGS, Path("/a/hosts.json"))
    assert base == host_key(host(description="x", groups=["g"], docker_missing=True), SETTINGS,
                            Path("/a/hosts.json"))
    assert base != host_key(h, SETTINGS, Path("/b/hosts.json"))
    other = SshSettings(None, None, SETTINGS.control_dir, "10m", 1.0)
    assert base != host_key(h, other, Path("/a/hosts.json"))


def _options(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            pairs.append((key, value))
    return pairs


def test_config_forces_policy_before_the_users_config() -> None:
    text = render_ssh_config(host(identity_file="~/.ssh/id_web"), SETTINGS, batch=True)
    pairs = _options(text)
    keys = [k for k, _ in pairs]
    include = keys.index("Include")
    forced = dict(pairs[:include])
    assert pairs[0] == ("Host", "*")
    assert forced["BatchMode"] == "yes"
    assert forced["PasswordAuthentication"] == "no"
    assert forced["KbdInteractiveAuthentication"] == "no"
    assert forced["PreferredAuthentications"] == "publickey"
    assert forced["StrictHostKeyChecking"] == "accept-new"
    assert forced["ForwardAgent"] == forced["ForwardX11"] == "no"  # for every hop
    assert forced["IdentitiesOnly"] == "yes"
    assert forced["IdentityFile"].strip('"').endswith("/.ssh/id_web")
    assert "~" not in forced["IdentityFile"]
    assert pairs[include] == ("Include", '"/home/u/.ssh/config"')
    assert pairs[include + 1] == ("Include", "/etc/ssh/ssh_config")
    # Defaults come after the user's config, in a new Host * block, so the user wins.
    after = pairs[include + 2:]
    assert after[0] == ("Host", "*")
    assert dict(after[1:]) == {"ConnectTimeout": "10", "ServerAliveInterval": "15",
                               "ServerAliveCountMax": "3"}
    # Nothing target-specific in the file: it is shared with the jump hosts.
    for key in ("Port", "User", "ProxyJump", "HostName", "ControlPath"):
        assert key not in keys


def test_interactive_config_lets_ssh_prompt() -> None:
    text = render_ssh_config(host(), SETTINGS, batch=False)
    assert "BatchMode" not in text
    assert "IdentityFile" not in text and "IdentitiesOnly" not in text


def test_known_hosts_override_and_no_user_config() -> None:
    settings = SshSettings(None, Path("/t/known_hosts"), Path("/tmp/o"), "1m", 0)
    pairs = _options(render_ssh_config(host(), settings, batch=True))
    assert ("UserKnownHostsFile", '"/t/known_hosts"') in pairs
    assert [v for k, v in pairs if k == "Include"] == ["/etc/ssh/ssh_config"]
