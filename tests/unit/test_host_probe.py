"""What `occ host test` asks a host and how it reads the answers (pure parts)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from opencode_cloud.engine.probe import (
    MARKER,
    DockerState,
    diagnose_docker,
    docker_cli_command,
    docker_problem,
    engine_info,
    parse_probe,
    probe_command,
)

pytestmark = pytest.mark.unit


def probe(**values: str):
    return parse_probe("\n".join([MARKER, *(f"{k}={v}" for k, v in values.items())]))


def test_probe_command_quotes_the_socket_and_runs_under_sh() -> None:
    command = probe_command("/run/user/1000/docker.sock")
    words = shlex.split(command)
    assert words[:2] == ["sh", "-c"] and len(words) == 3
    assert "sock=/run/user/1000/docker.sock" in words[2]
    cli = shlex.split(docker_cli_command("/var/run/docker.sock"))
    assert cli[:2] == ["sh", "-c"] and cli[-1] == "/var/run/docker.sock"


def test_probe_script_runs_here() -> None:
    # The same script locally: it must be valid POSIX sh and produce the marker and keys.
    out = subprocess.run(shlex.split(probe_command("/nonexistent.sock")), capture_output=True,
                         text=True, timeout=30).stdout
    result = parse_probe("Welcome banner\n" + out)
    assert result.get("socket") == "no"
    assert result.get("cli") in {"yes", "no"}
    assert result.get("whoami")
    assert result.os_name and result.arch


def test_parse_probe_needs_the_marker_and_strips_quotes() -> None:
    with pytest.raises(ValueError):
        parse_probe("no marker here\n")
    result = parse_probe(f"motd\n{MARKER}\nos_PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
                         "os_ID=debian\nnot a pair\n")
    assert result.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert result.os_release.id == "debian"
    assert parse_probe(f"{MARKER}\nos_NAME=Alpine\nos_VERSION_ID=3.19\n").os_name == "Alpine 3.19"
    bare = parse_probe(f"{MARKER}\nuname=Linux 6.1.0-18-amd64 x86_64\n")
    assert (bare.os_name, bare.arch) == ("Linux 6.1.0-18-amd64", "x86_64")


ENGINE = {"ServerVersion": "20.10.24+dfsg1", "ApiVersion": "1.41"}


def test_engine_answer_means_ok() -> None:
    check = diagnose_docker(probe(cli="yes", socket="yes", socket_access="yes"), ENGINE)
    assert (check.state, check.version, check.api_version) == (DockerState.OK, "20.10.24+dfsg1",
                                                              "1.41")


@pytest.mark.parametrize(("values", "cli", "state"), [
    (dict(cli="no", engine="no", socket="no"), None, DockerState.MISSING),
    (dict(cli="yes", engine="yes", socket="no"), None, DockerState.NOT_RUNNING),
    (dict(cli="no", engine="yes", socket="no"), None, DockerState.NOT_RUNNING),
    (dict(cli="yes", engine="yes", socket="yes", socket_access="no"), None,
     DockerState.PERMISSION),
    (dict(cli="yes", engine="yes", socket="yes", socket_access="yes"),
     dict(docker_rc="1", docker_out="Cannot connect to the Docker daemon at unix:///var/run/"
          "docker.sock. Is the docker daemon running?"), DockerState.NOT_RUNNING),
    (dict(cli="yes", engine="yes", socket="yes", socket_access="yes"),
     dict(docker_rc="0", docker_out="24.0.7"), DockerState.NO_FORWARDING),
    (dict(cli="no", engine="yes", socket="yes", socket_access="yes"), None,
     DockerState.NOT_RUNNING),
])
def test_docker_diagnosis(values: dict, cli: dict | None, state: DockerState) -> None:
    cli_result = probe(**cli) if cli is not None else None
    check = diagnose_docker(probe(**values), None, cli_result)
    assert check.state is state
    problem = docker_problem(check, probe(whoami="deploy", os_ID="ubuntu", **values), "web1",
                             "/var/run/docker.sock")
    assert problem.host == "web1" and problem.message and problem.hint


def test_problem_hints() -> None:
    p = probe(whoami="deploy", os_ID="ubuntu", cli="no", engine="no", socket="no")
    missing = docker_problem(diagnose_docker(p, None), p, "web1", "/var/run/docker.sock")
    assert "not installed" in missing.message
    assert "apt-get install -y --no-install-recommends docker.io" in missing.hint
    p = probe(whoami="deploy", cli="yes", socket="yes", socket_access="no")
    denied = docker_problem(diagnose_docker(p, None), p, "web1", "/var/run/docker.sock")
    assert "deploy may not use the Docker socket" in denied.message
    assert "usermod -aG docker deploy" in denied.hint
    assert "occ host disconnect web1" in denied.hint


def test_engine_info() -> None:
    from opencode_cloud.engine.http import EngineAnswer

    body = b'{"ServerVersion":"20.10.24","OperatingSystem":"Debian GNU/Linux 12 (bookworm)"}'
    answer = EngineAnswer(200, {"api-version": "1.41"}, body)
    assert engine_info(answer) == {"ServerVersion": "20.10.24", "ApiVersion": "1.41",
                                   "OperatingSystem": "Debian GNU/Linux 12 (bookworm)"}
    assert engine_info(EngineAnswer(500, {}, b"{}")) is None
    assert engine_info(EngineAnswer(200, {}, b"not json")) is None
    assert engine_info(EngineAnswer(200, {}, b'{"Version": "x"}')) is None


# -- Docker at boot ---------------------------------------------------------------------
@pytest.mark.parametrize(("answer", "init", "state", "fix"), [
    ("init=systemd\nboot=enabled", "systemd", "enabled", "sudo systemctl enable docker"),
    ("init=systemd\nboot=disabled", "systemd", "disabled", "sudo systemctl enable docker"),
    ("init=openrc\nboot=disabled", "openrc", "disabled", "sudo rc-update add docker default"),
    ("init=sysv\nboot=enabled", "sysv", "enabled", "sudo update-rc.d docker defaults"),
    ("init=unknown\nboot=unknown", "unknown", "unknown", None),
    ("init=$(reboot)\nboot=maybe", "unknown", "unknown", None),  # odd answers: unknown
])
def test_boot_answers(answer: str, init: str, state: str, fix: str | None) -> None:
    from opencode_cloud.engine.probe import MARKER, parse_boot

    check = parse_boot(f"banner\n{MARKER}\n{answer}\n")
    assert (check.init, check.state, check.fix) == (init, state, fix)


def test_boot_script_on_this_machine_matches_its_rc_links() -> None:
    from pathlib import Path

    from opencode_cloud.engine.probe import boot_command, parse_boot

    out = subprocess.run(shlex.split(boot_command()), capture_output=True, text=True)
    check = parse_boot(out.stdout)
    if Path("/run/systemd/system").is_dir():
        assert check.init == "systemd"
    elif Path("/etc/init.d/docker").exists():
        links = [p for p in Path("/").glob("etc/rc[2345].d/S*docker")]
        assert (check.init, check.enabled) == ("sysv", bool(links))
    else:
        assert check.init in ("openrc", "unknown")
