"""cli/service_target.py: Engine failures become explained errors, and a host whose Docker is
missing or stopped is repaired once (after asking) before the command runs again."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner
from docker.errors import APIError

from opencode_cloud.cli import service_target as st
from opencode_cloud.cli.state import app_state
from opencode_cloud.config.model import Config
from opencode_cloud.engine.endpoint import DockerEndpoint, DockerUnavailable
from opencode_cloud.engine.probe import DockerProblem, DockerState
from opencode_cloud.engine.remote import RemoteEngine
from opencode_cloud.errors import OccError
from opencode_cloud.hosts.model import Host, HostConfig
from tests.unit.fake_docker import RecordingReporter

HOST = Host("web1", HostConfig(hostname="web1.example"))


def missing(state: DockerState = DockerState.MISSING) -> DockerProblem:
    return DockerProblem("Docker is not installed on the host", "occ host install-docker web1",
                         state=state, host="web1")


class Scenario:
    """A ServiceCommand whose body raises the given failures in turn, then returns "done"."""

    def __init__(self, failures: list[BaseException], *, remote: bool = True,
                 interactive: bool = True) -> None:
        self.failures = list(failures)
        self.runs = 0
        self.reporter = RecordingReporter(interactive=interactive)
        self.engine = RemoteEngine(HOST, self.reporter) if remote else None
        self.endpoint = DockerEndpoint(base_url="unix:///fwd.sock", host="web1") if remote \
            else DockerEndpoint.from_environment()

    def body(self) -> str:
        self.runs += 1
        state = app_state()
        state.engine, state.endpoint, state.reporter = self.engine, self.endpoint, self.reporter
        if self.failures:
            raise self.failures.pop(0)
        return "done"

    def invoke(self):
        command = st.ServiceCommand("cmd", callback=self.body)
        with command.make_context("cmd", []) as ctx:
            return command.invoke(ctx)


@pytest.fixture
def installs(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    from opencode_cloud.install import installer

    calls: list[tuple] = []

    def offer(conn, host, reporter, *, assume_yes):
        calls.append((conn, host, reporter, assume_yes))

    monkeypatch.setattr(installer, "offer_docker_install", offer)
    return calls


def test_a_missing_docker_is_installed_after_asking_and_the_command_runs_again(
        fake_ssh, installs) -> None:
    scenario = Scenario([missing()])
    assert scenario.invoke() == "done"
    assert scenario.runs == 2
    [conn] = fake_ssh
    assert installs == [(conn, HOST, scenario.reporter, False)]
    assert conn.calls == [("close",)]  # stale forwards go; the rerun makes its own


def test_the_repair_is_offered_once(fake_ssh, installs) -> None:
    second = missing(DockerState.NOT_RUNNING)
    scenario = Scenario([missing(), second])
    with pytest.raises(DockerProblem) as e:
        scenario.invoke()
    assert e.value is second and scenario.runs == 2 and len(installs) == 1


def test_an_engine_that_cannot_be_reached_is_diagnosed_then_repaired(fake_ssh,
                                                                     installs) -> None:
    scenario = Scenario([requests.exceptions.ConnectionError("refused")])
    diagnosed = []

    def diagnose(exc):
        diagnosed.append(exc)
        return missing(DockerState.NOT_RUNNING)

    scenario.endpoint.diagnose = diagnose
    assert scenario.invoke() == "done"
    assert len(diagnosed) == 1 and len(installs) == 1


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"interactive": False}, missing()),  # nobody to ask: the hint names install-docker
    ({"remote": False}, missing()),  # this machine: only its own socket's failures count
    ({"remote": False}, DockerUnavailable("permission denied on the Docker socket")),
    ({"remote": False, "interactive": False}, DockerUnavailable("not running", absent=True)),
    ({}, missing(DockerState.PERMISSION)),
    ({}, OccError("port 3000 is in use")),
])
def test_no_repair_is_offered(fake_ssh, installs, kwargs: dict, problem: OccError) -> None:
    scenario = Scenario([problem], **kwargs)
    with pytest.raises(OccError) as e:
        scenario.invoke()
    assert e.value is problem and scenario.runs == 1 and installs == []


@pytest.fixture
def local_installs(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    from opencode_cloud.install import local

    calls: list[tuple] = []
    monkeypatch.setattr(local, "offer_local_docker_install",
                        lambda base_url, reporter, *, assume_yes:
                        calls.append((base_url, reporter, assume_yes)))
    return calls


def test_this_machines_missing_docker_is_offered_and_the_command_runs_again(
        xdg: Path, local_installs, installs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nothing-here.sock")
    problem = DockerUnavailable("the Docker daemon is not running on this machine",
                                absent=True)
    scenario = Scenario([problem], remote=False)
    assert scenario.invoke() == "done"
    assert scenario.runs == 2 and installs == []
    assert local_installs == [("unix:///tmp/nothing-here.sock", scenario.reporter, False)]
    assert scenario.reporter.of("warn") == [problem.message]  # why it offers


def test_setup_yes_repairs_without_asking(xdg: Path, local_installs) -> None:
    scenario = Scenario([DockerUnavailable("no socket", absent=True)], remote=False,
                        interactive=False)
    command = click.Command("cmd", callback=lambda: st.run_repairing(
        click.get_current_context(), scenario.body, assume_yes=True))
    with command.make_context("cmd", []) as ctx:
        assert command.invoke(ctx) == "done"
    assert [call[2] for call in local_installs] == [True]


def test_an_engine_refusal_names_its_explanation(fake_ssh, installs) -> None:
    refusal = APIError("409 Conflict", explanation="container name already in use")
    with pytest.raises(OccError) as e:
        Scenario([refusal]).invoke()
    assert e.value.message == "Docker on web1 refused: container name already in use"
    assert e.value.hint == "Run again with -vv for details."
    assert e.value.__cause__ is refusal


def test_bugs_and_click_exits_pass_through_untouched(fake_ssh, installs) -> None:
    bug = KeyError("oops")
    with pytest.raises(KeyError) as e:
        Scenario([bug]).invoke()
    assert e.value is bug
    with pytest.raises(click.Abort):
        Scenario([click.Abort()]).invoke()
    with pytest.raises(KeyboardInterrupt):
        Scenario([KeyboardInterrupt()]).invoke()


def test_engine_failure() -> None:
    endpoint = DockerEndpoint(base_url="unix:///s.sock")
    assert st.engine_failure(endpoint, ValueError("bug")) is None
    docker_error = requests.exceptions.ConnectionError("('Connection aborted.', "
                                                       "FileNotFoundError(2, 'No such file or "
                                                       "directory'))")
    assert st.engine_failure(None, docker_error) is None  # no Engine chosen yet
    explained = st.engine_failure(endpoint, docker_error)
    assert isinstance(explained, DockerUnavailable)
    assert explained.message.startswith("Docker is not installed or not running on this machine")
    refused = st.engine_failure(endpoint, APIError("500", explanation="no space left"))
    assert refused.message == "Docker on this machine refused: no space left"


def test_host_config_puts_a_hosts_settings_on_top(xdg: Path) -> None:
    config = Config(memory_limit="4g")
    assert st.host_config(config, None) is config
    assert st.host_config(config, HOST) is config
    tuned = Host("web2", HostConfig(hostname="w2", settings={"opencode_web_port": 3100}))
    merged = st.host_config(config, tuned)
    assert (merged.opencode_web_port, merged.memory_limit) == (3100, "4g")


def test_open_service_for_this_machine(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/occ-unit-none.sock")
    monkeypatch.setenv("OCC_INSTANCE", "unit1")
    command = click.Command("cmd")
    with command.make_context("cmd", []) as ctx:
        app_state(ctx).local = True
        service = st.open_service(ctx)
        state = app_state(ctx)
        assert state.target_host is None and state.endpoint is service.endpoint
        assert service.endpoint.base_url == "unix:///tmp/occ-unit-none.sock"
        assert service.names.container == "unit1-sandbox"
        assert service.config == Config()
        assert st.printer_of(service) is service.reporter.printer


def test_open_service_for_a_host_closes_its_connection_with_the_command(
        xdg: Path, fake_ssh, monkeypatch: pytest.MonkeyPatch) -> None:
    from opencode_cloud.engine import target

    monkeypatch.setattr(target, "resolve_host", lambda option, local: HOST)
    command = click.Command("cmd")
    with command.make_context("cmd", []) as ctx:
        service = st.open_service(ctx)
        assert app_state(ctx).target_host == "web1"
        assert service.endpoint.where == "on web1"
        assert fake_ssh[0].calls == [("docker_forward", "/var/run/docker.sock")]
    assert fake_ssh[0].calls[-1] == ("close",)


def test_timeout_option_and_confirmation() -> None:
    @click.command()
    @st.readiness_timeout_option()
    def wait(timeout: float) -> None:
        click.echo(f"timeout={timeout}")
        st.confirm_or_fail("Delete every volume?", "--force")

    runner = CliRunner()
    assert "timeout=120.0" in runner.invoke(wait, []).output
    assert runner.invoke(wait, ["--timeout", "0.5"]).exit_code == 2
    result = runner.invoke(wait, ["--timeout", "5"])
    assert isinstance(result.exception, OccError)
    assert result.exception.message == ("Delete every volume? needs confirmation and there is "
                                        "no terminal to ask")
    assert result.exception.hint == "Add --force to go ahead without asking."

