"""A remote Engine through a fake SSH connection: engine/remote.py, versions.py, target.py
and the part of engine/probe.py that asks a host (probe_host)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from opencode_cloud.engine import probe, remote, target, versions
from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.errors import OccError
from opencode_cloud.hosts.model import Host, HostConfig
from tests.unit.fake_docker import (
    EngineSocket,
    FakeConnection,
    RecordingReporter,
    answered,
    json_route,
)

# ``fake_ssh`` (tests/unit/conftest.py) puts a FakeConnection in place of HostConnection.

HOST = Host("web1", HostConfig(hostname="web1.example", user="deploy",
                               docker_socket="/run/user/1000/docker.sock"))
INFO = {"ServerVersion": "24.0.7", "OperatingSystem": "Ubuntu 22.04.4 LTS",
        "Architecture": "x86_64"}


def probe_answer(**values: str) -> str:
    return "\n".join(["Welcome to web1", probe.MARKER, *(f"{k}={v}" for k, v in values.items())])


def test_versions_are_remembered_per_key_and_forgotten(xdg: Path) -> None:
    assert versions.known_version("k1") is None
    versions.remember_version("k1", "1.41")
    versions.remember_version("k2", "1.43")
    assert (versions.known_version("k1"), versions.known_version("k2")) == ("1.41", "1.43")
    versions.remember_version("k1", None)
    versions.remember_version("never-known", None)
    assert versions.known_version("k1") is None and versions.known_version("k2") == "1.43"
    assert (xdg / "data" / "opencode-cloud" / "engine-versions.json").is_file()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"k1": 7}', ""])
def test_a_damaged_version_cache_is_simply_empty(xdg: Path, text: str) -> None:
    path = xdg / "data" / "opencode-cloud" / "engine-versions.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert versions.known_version("k1") is None
    versions.remember_version("k1", "1.41")
    assert versions.known_version("k1") == "1.41"


def test_the_endpoint_goes_through_the_forwarded_socket(fake_ssh) -> None:
    reporter = RecordingReporter()
    versions.remember_version("key-web1", "1.41")
    engine = remote.RemoteEngine(HOST, reporter)
    [conn] = fake_ssh
    assert conn.reporter is reporter and engine.version_key == "key-web1"
    with engine as endpoint:
        assert endpoint.base_url == "unix:///nonexistent/occ-test/docker.sock"
        assert endpoint.host == "web1" and endpoint.where == "on web1"
        assert endpoint.api_version == "1.41"
        assert endpoint.free_port_near is None  # ports on the host cannot be tried from here
        endpoint.forward_port(4000, "127.0.0.1", 3000)
        assert endpoint.connection_alive() is True
        endpoint.on_version("1.44")
        assert versions.known_version("key-web1") == "1.44"
    assert conn.calls == [("docker_forward", "/run/user/1000/docker.sock"),
                          ("forward_tcp", 4000, "127.0.0.1", 3000), ("close",)]


def test_an_engine_that_does_not_answer_is_diagnosed_over_ssh(fake_ssh) -> None:
    versions.remember_version("key-web1", "1.41")
    with remote.RemoteEngine(HOST) as endpoint:
        conn = fake_ssh[0]
        conn.answers = [("sock=", answered(probe_answer(
            os_ID="ubuntu", whoami="deploy", cli="no", engine="no", socket="no")))]
        problem = endpoint.explain(FileNotFoundError(2, "No such file or directory"))
    assert isinstance(problem, probe.DockerProblem)
    assert problem.state is probe.DockerState.MISSING and problem.host == "web1"
    assert "occ host install-docker web1" in problem.hint
    assert versions.known_version("key-web1") is None  # negotiated anew next time


def test_an_engine_that_answers_the_diagnosis_stopped_answering_before(
        fake_ssh, tmp_path: Path) -> None:
    engine = remote.RemoteEngine(HOST)
    with EngineSocket(tmp_path / "fwd.sock", {"/info": json_route(INFO)}):
        fake_ssh[0].forward_path = str(tmp_path / "fwd.sock")
        with engine as endpoint:
            problem = endpoint.explain(ConnectionResetError())
    assert type(problem) is OccError
    assert problem.message == "the Docker Engine on web1 stopped answering"
    assert problem.hint == "Check it with: occ host test web1"


def test_probe_host_when_the_engine_answers_through_the_forward(tmp_path: Path) -> None:
    conn = FakeConnection(HOST)
    routes = {"/info": json_route(INFO, headers={"Api-Version": "1.43"})}
    with EngineSocket(tmp_path / "fwd.sock", routes) as server:
        conn.forward_path = str(tmp_path / "fwd.sock")
        report = probe.probe_host(conn)
    assert server.requests == ["/info"]
    assert [c[0] for c in conn.calls] == ["ensure_master", "docker_forward"]  # no shell probe
    assert (report.os_name, report.arch, report.remote_user) == ("Ubuntu 22.04.4 LTS",
                                                                 "x86_64", "deploy")
    assert report.docker == probe.DockerCheck(probe.DockerState.OK, "24.0.7", "1.43")
    assert report.problem is None
    data = report.to_json()
    assert data["ssh"]["reachable"] and data["ssh"]["new_connection"] is True
    assert data["docker"] == {"state": "ok", "server_version": "24.0.7", "api_version": "1.43",
                              "socket": "/run/user/1000/docker.sock", "socket_usable": True,
                              "problem": None}


def test_probe_host_asks_the_shell_and_then_the_cli_when_the_engine_is_silent() -> None:
    conn = FakeConnection(HOST)
    conn.answers = [
        ("docker_rc", answered(probe_answer(docker_rc="0", docker_out="24.0.7 "))),
        ("sock=", answered(probe_answer(os_PRETTY_NAME='"Debian GNU/Linux 12 (bookworm)"',
                                        uname="Linux 6.1.0 aarch64", whoami="ops", cli="yes",
                                        engine="yes", socket="yes", socket_access="yes"))),
    ]
    report = probe.probe_host(conn)
    runs = [c[1] for c in conn.calls if c[0] == "run"]
    assert runs == [probe.probe_command("/run/user/1000/docker.sock"),
                    probe.docker_cli_command("/run/user/1000/docker.sock")]
    assert (report.os_name, report.arch, report.remote_user) == (
        "Debian GNU/Linux 12 (bookworm)", "aarch64", "ops")
    assert report.docker.state is probe.DockerState.NO_FORWARDING
    assert "AllowStreamLocalForwarding" in report.problem.hint
    assert report.to_json()["docker"]["problem"] == report.problem.message
    assert report.to_json()["docker"]["socket_usable"] is False


def test_probe_host_when_the_login_shell_does_not_run_the_check() -> None:
    conn = FakeConnection(HOST)
    with pytest.raises(OccError, match=r"did not run occ's check \(exit status 127\): sh: "
                                       r"not found") as e:
        probe.probe_host(conn)
    assert "login shell" in e.value.hint


def test_query_engine_without_an_answer(tmp_path: Path) -> None:
    assert probe.query_engine(str(tmp_path / "none.sock")) is None
    with EngineSocket(tmp_path / "e.sock", {"/info": (500, b"{}", {})}):
        assert probe.query_engine(str(tmp_path / "e.sock")) is None


def test_host_report_without_a_docker_check() -> None:
    report = probe.HostReport("web1", False, 12.345, 6.789)
    assert report.to_json()["ssh"] == {"reachable": True, "new_connection": False,
                                       "connect_ms": 12.3, "docker_api_round_trip_ms": 6.8}
    assert report.to_json()["docker"]["state"] is None


def test_docker_problem_of_an_ok_engine_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        probe.docker_problem(probe.DockerCheck(probe.DockerState.OK), probe.ProbeResult({}),
                             "web1", "/var/run/docker.sock")


def test_not_running_hint_names_the_socket_and_the_detail() -> None:
    check = probe.DockerCheck(probe.DockerState.NOT_RUNNING, detail=" no socket ")
    problem = probe.docker_problem(check, probe.ProbeResult({}), "web1", "/run/d.sock")
    assert problem.message == ("Docker is installed but its daemon is not running (no answer "
                               "on /run/d.sock) (no socket)")
    assert "occ host edit web1 --docker-socket PATH" in problem.hint


def test_permission_denied_from_the_cli_and_os_names() -> None:
    values = probe.parse_probe(probe_answer(cli="yes", engine="yes", socket="yes",
                                            socket_access="yes"))
    cli = probe.parse_probe(probe_answer(docker_rc="1", docker_out="permission denied while "
                                         "trying to connect"))
    assert probe.diagnose_docker(values, None, cli).state is probe.DockerState.PERMISSION
    assert probe.ProbeResult({}).os_name == "unknown"
    assert probe.ProbeResult({"uname": "Linux 6.1"}).arch == ""


def test_engine_for_this_machine_or_a_host(fake_ssh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/occ-test-docker.sock")
    local = target.engine_for(None, RecordingReporter())
    assert isinstance(local, contextlib.nullcontext)
    with local as endpoint:
        assert isinstance(endpoint, DockerEndpoint)
        assert endpoint.base_url == "unix:///tmp/occ-test-docker.sock" and endpoint.host is None
    assert isinstance(target.engine_for(HOST, RecordingReporter()), remote.RemoteEngine)
    assert target.resolve_host(None, force_local=True) is None
    assert target.resolve_host("local", force_local=False) is None
    assert target.resolve_host(None, force_local=False) is None  # no hosts.json: this machine
