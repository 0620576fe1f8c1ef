"""The login kept as volume labels (service/credentials.py) and log lines (service/logs.py)."""

from __future__ import annotations

import pytest

from opencode_cloud.engine.labels import label
from opencode_cloud.errors import NotRunningError, OccError
from opencode_cloud.service import credentials, logs
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.names import ServiceNames
from tests.unit.fake_docker import FakeClient

NAMES = ServiceNames("t1")
ALL = ["t1-workspace", "t1-data", "t1-config", "t1-state"]


def test_first_start_creates_every_volume_and_keeps_the_login_on_the_data_volume(
        client: FakeClient) -> None:
    creds = credentials.ensure_volumes(client, NAMES)
    assert creds.username == "opencode"
    assert len(creds.password) == 24 and ":" not in creds.password
    assert client.volumes.created == ALL
    labels = client.volumes.get("t1-data").attrs["Labels"]
    assert labels == {label("instance"): "t1", credentials.USERNAME_LABEL: "opencode",
                      credentials.PASSWORD_LABEL: creds.password}
    assert client.volumes.get("t1-state").attrs["Labels"] == {label("instance"): "t1"}
    # Later starts read the same login back and create nothing.
    assert credentials.ensure_volumes(client, NAMES) == creds
    assert client.volumes.created == ALL
    assert credentials.read_credentials(client, NAMES) == creds


def test_a_lost_volume_is_recreated_and_the_login_kept(client: FakeClient) -> None:
    creds = credentials.ensure_volumes(client, NAMES)
    client.volumes.get("t1-workspace").remove()
    assert credentials.ensure_volumes(client, NAMES) == creds
    assert client.volumes.created == [*ALL, "t1-workspace"]


def test_no_data_volume_means_no_credentials_yet(client: FakeClient) -> None:
    assert credentials.read_credentials(client, NAMES) is None


def test_a_foreign_data_volume_is_refused(client: FakeClient) -> None:
    client.volumes.create("t1-data", labels=None)
    with pytest.raises(OccError, match="volume t1-data exists but holds no occ credentials") as e:
        credentials.ensure_volumes(client, NAMES)
    assert "OCC_INSTANCE" in e.value.hint
    assert client.volumes.created == ["t1-data"]


def test_passwords_differ() -> None:
    assert len({credentials.generate_password() for _ in range(20)}) == 20


def test_logs_need_a_container(svc: ServiceContext) -> None:
    with pytest.raises(NotRunningError, match="no opencode container") as e:
        list(logs.log_lines(svc, 10, False, False, None))
    assert e.value.hint == "Start the service with: occ start"


def test_logs_are_whole_lines_across_chunks_and_filtered(client: FakeClient,
                                                         svc: ServiceContext) -> None:
    container = client.containers.add("t1-sandbox", client.images.make("img:1"))
    container.log_bytes = [b"first li", b"ne\r\nsecond\nerr", b"or: third\n", b"",
                           b"tail \xff without newline"]
    assert list(logs.log_lines(svc, None, False, False, None)) == [
        "first line", "second", "error: third", "tail \ufffd without newline"]
    assert container.log_calls[-1] == {"stream": True, "follow": False, "timestamps": False,
                                       "tail": "all"}
    assert list(logs.log_lines(svc, 50, True, True, "ir")) == ["first line", "error: third"]
    assert container.log_calls[-1] == {"stream": True, "follow": True, "timestamps": True,
                                       "tail": 50}


def test_split_lines_keeps_empty_lines_and_nothing_after_a_final_newline() -> None:
    assert list(logs._split_lines([b"a\n\nb\n"])) == ["a", "", "b"]
    assert list(logs._split_lines([])) == []
