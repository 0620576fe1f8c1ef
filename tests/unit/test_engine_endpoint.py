"""engine/endpoint.py: the client, inspect over a real unix socket, explanations, ports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from docker.errors import DockerException

from opencode_cloud.engine import endpoint as ep
from opencode_cloud.errors import OccError
from tests.unit.fake_docker import EngineSocket, FakeClient, fake_endpoint, json_route


def test_from_environment_honours_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    local = ep.DockerEndpoint.from_environment()
    assert local.base_url == "unix:///var/run/docker.sock"
    assert local.free_port_near is ep.free_local_port_near
    assert local.where == "on this machine"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert ep.DockerEndpoint.from_environment().base_url == "tcp://10.0.0.5:2375"
    assert ep.DockerEndpoint(host="web1").where == "on web1"


class Recorder:
    """In place of docker.DockerClient: remembers how it was made."""

    made: list[dict] = []

    def __init__(self, **kwargs) -> None:
        Recorder.made.append(kwargs)
        self.api = type("Api", (), {"api_version": "1.43"})()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_the_client_is_made_once_and_the_negotiated_version_learnt(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    Recorder.made = []
    monkeypatch.setattr(docker, "DockerClient", Recorder)
    learnt = []
    endpoint = ep.DockerEndpoint(base_url="unix:///x.sock", on_version=learnt.append)
    client = endpoint.client()
    assert endpoint.client() is client
    assert Recorder.made == [{"base_url": "unix:///x.sock", "version": "auto", "timeout": 120}]
    assert learnt == ["1.43"]
    endpoint.close()
    assert client.closed and endpoint._client is None
    endpoint.close()  # twice is fine

    known = ep.DockerEndpoint(base_url="unix:///x.sock", api_version="1.41",
                              on_version=learnt.append)
    known.client()
    assert Recorder.made[-1]["version"] == "1.41" and learnt == ["1.43"]


def test_a_client_that_cannot_be_made_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    def refuse(**kwargs):
        raise DockerException("Error while fetching server API version: ('Connection "
                              "aborted.', ConnectionRefusedError(111, 'Connection refused'))")

    monkeypatch.setattr(docker, "DockerClient", refuse)
    with pytest.raises(ep.DockerUnavailable, match="the Docker daemon is not running on this "
                                                   "machine"):
        ep.DockerEndpoint(base_url="unix:///x.sock").client()


@pytest.fixture
def engine(tmp_path: Path):
    attrs = {"Id": "abc123", "State": {"Running": True}}
    routes = {"/containers/t1-sandbox/json": json_route(attrs),
              "/containers/odd%20name/json": json_route({"Id": "odd"}),
              "/containers/broken/json": (500, b"driver failed", {})}
    with EngineSocket(tmp_path / "docker.sock", routes) as server:
        yield server


def test_inspect_over_the_unix_socket(engine: EngineSocket) -> None:
    endpoint = ep.DockerEndpoint(base_url=f"unix://{engine.path}")
    assert endpoint.inspect_container("t1-sandbox") == {"Id": "abc123",
                                                        "State": {"Running": True}}
    assert endpoint.inspect_container("odd name") == {"Id": "odd"}
    assert endpoint.inspect_container("absent") is None
    with pytest.raises(OccError, match="^Docker on this machine refused: driver failed$"):
        endpoint.inspect_container("broken")
    assert engine.requests == ["/containers/t1-sandbox/json", "/containers/odd%20name/json",
                               "/containers/absent/json", "/containers/broken/json"]
    assert endpoint._client is None  # no Docker SDK client was needed


def test_inspect_without_a_socket_is_explained(tmp_path: Path) -> None:
    endpoint = ep.DockerEndpoint(base_url=f"unix://{tmp_path}/none.sock")
    with pytest.raises(ep.DockerUnavailable) as e:
        endpoint.inspect_container("t1-sandbox")
    assert e.value.message == (f"Docker is not installed or not running on this machine (no "
                               f"socket at unix://{tmp_path}/none.sock)")
    assert "docs.docker.com/engine/install" in e.value.hint


def test_inspect_on_a_socket_nobody_listens_on(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: connections are refused
        with pytest.raises(ep.DockerUnavailable, match="daemon is not running"):
            ep.DockerEndpoint(base_url=f"unix://{path}").inspect_container("x")


def test_inspect_through_the_sdk_elsewhere() -> None:
    client = FakeClient()
    endpoint = fake_endpoint(client)
    assert endpoint.inspect_container("t1-sandbox") is None
    container = client.containers.add("t1-sandbox", client.images.make("i:1"))
    assert endpoint.inspect_container("t1-sandbox")["Id"] == container.id


def test_explain_asks_the_diagnosis_first() -> None:
    problem = OccError("Docker is not installed on the host")
    assert ep.DockerEndpoint(diagnose=lambda exc: problem).explain(OSError()) is problem

    def ssh_down(exc):
        raise OccError("cannot connect to web1")

    assert ep.DockerEndpoint(diagnose=ssh_down).explain(OSError()).message == \
        "cannot connect to web1"


@pytest.mark.parametrize(("exc", "message", "hint"), [
    (PermissionError(13, "Permission denied"),
     "permission denied on the Docker socket on web1 (unix:///s.sock)", "usermod -aG docker"),
    (DockerException("... ('Connection aborted.', PermissionError(13, 'Permission denied'))"),
     "permission denied on the Docker socket on web1", "log out and in again"),
    (FileNotFoundError(2, "No such file or directory"),
     "Docker is not installed or not running on web1 (no socket at unix:///s.sock)",
     "systemctl start docker"),
    (ConnectionRefusedError(111, "Connection refused"),
     "the Docker daemon is not running on web1 (unix:///s.sock)", "systemctl start docker"),
    (TimeoutError("timed out"), "cannot reach Docker on web1: timed out", "docker version"),
])
def test_explain_messages(exc: BaseException, message: str, hint: str) -> None:
    error = ep.DockerEndpoint(base_url="unix:///s.sock", host="web1").explain(exc)
    assert isinstance(error, ep.DockerUnavailable)
    assert error.message.startswith(message) and hint in error.hint


def test_free_local_port_near_skips_taken_ports() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        found = ep.free_local_port_near("127.0.0.1", port)
        assert found is not None and port < found < port + 50
        assert ep.free_local_port_near("127.0.0.1", port, tries=1) is None
    assert ep.free_local_port_near("127.0.0.1", 65535, tries=50) in (65535, None)
    # An address this machine does not have: nothing can be bound there.
    assert ep.free_local_port_near("192.0.2.1", 3000, tries=3) is None
