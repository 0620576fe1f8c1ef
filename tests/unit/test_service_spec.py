"""The container's settings (service/spec.py) and the names of its Docker objects."""

from __future__ import annotations

import json

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.engine.labels import label
from opencode_cloud.errors import OccError
from opencode_cloud.service import spec
from opencode_cloud.service.credentials import Credentials, login_digest
from opencode_cloud.service.names import ServiceNames

CREDS = Credentials("opencode", "s3cret-pw")


def test_summary_hashes_the_environment_and_keeps_no_secret() -> None:
    config = Config(container_env=["API_KEY=sk-very-secret", "A=1"])
    summary = spec.settings_summary(config, "sha256:img")
    assert summary == {
        "image": "sha256:img", "bind_address": "127.0.0.1", "opencode_web_port": 3000,
        "cockpit_port": None, "container_env": summary["container_env"],
        "memory_limit": "4g", "pinned_image": False, "login": None,
        "watchdog": [10, 5, 3, 90], "image_packages": [], "image_dockerfile": None,
        "mounts": [],
    }
    assert len(summary["container_env"]) == 16
    assert "sk-very-secret" not in json.dumps(summary)
    # The order of the entries does not matter, their values do.
    same = spec.settings_summary(Config(container_env=["A=1", "API_KEY=sk-very-secret"]), "x")
    other = spec.settings_summary(Config(container_env=["A=1", "API_KEY=sk-other"]), "x")
    assert same["container_env"] == summary["container_env"] != other["container_env"]


def test_summary_names_the_cockpit_port_only_when_enabled_and_marks_a_pin() -> None:
    config = Config(cockpit_enabled=True, cockpit_port=9191)
    assert spec.settings_summary(config, "i")["cockpit_port"] == 9191
    assert spec.settings_summary(Config(cockpit_port=9191), "i")["cockpit_port"] is None
    assert spec.settings_summary(config, "i", pinned=True)["pinned_image"] is True


def test_drift_is_described_in_words_without_values_of_image_or_env() -> None:
    old = spec.settings_summary(Config(), "sha256:old")
    new = spec.settings_summary(
        Config(opencode_web_port=3111, container_env=["K=v"], memory_limit=None), "sha256:new")
    assert spec.describe_drift(old, new) == [
        "image changed", "opencode_web_port 3000 -> 3111", "container_env changed",
        "memory_limit 4g -> None",
    ]
    assert spec.describe_drift(old, old) == []
    # A container made before a key existed: the key counts as changed from None.
    assert spec.describe_drift({}, {"pinned_image": True}) == ["pinned_image None -> True"]


def test_container_kwargs_publish_ports_mount_volumes_and_put_auth_last() -> None:
    config = Config(bind_address="0.0.0.0", opencode_web_port=3100, cockpit_enabled=True,
                    cockpit_port=9200, container_env=["OPENCODE_SERVER_PASSWORD=overridden"],
                    memory_limit="2g")
    names = ServiceNames("t1")
    kwargs = spec.container_kwargs(config, names, "sha256:img", CREDS, rolled_back=True)
    assert kwargs["image"] == "sha256:img"
    assert kwargs["name"] == "t1-sandbox" and kwargs["hostname"] == "t1"
    assert kwargs["ports"] == {"3000/tcp": ("0.0.0.0", 3100), "9090/tcp": ("0.0.0.0", 9200)}
    env = kwargs["environment"]
    assert env[0] == "OPENCODE_SERVER_PASSWORD=overridden"
    # occ's own values come after container_env, so they win.
    assert env[1:] == ["OPENCODE_SERVER_USERNAME=opencode", "OPENCODE_SERVER_PASSWORD=s3cret-pw",
                       "OPENCODE_DISABLE_AUTOUPDATE=1", "OCC_COCKPIT_ENABLED=1",
                       "OCC_WATCHDOG=1", "OCC_WATCHDOG_INTERVAL=10", "OCC_WATCHDOG_TIMEOUT=5",
                       "OCC_WATCHDOG_FAILURES=3", "OCC_WATCHDOG_MEMORY_PERCENT=90"]
    assert kwargs["volumes"] == {
        "t1-workspace": {"bind": "/home/opencoder/workspace", "mode": "rw"},
        "t1-data": {"bind": "/home/opencoder/.local/share/opencode", "mode": "rw"},
        "t1-config": {"bind": "/home/opencoder/.config/opencode", "mode": "rw"},
        "t1-state": {"bind": "/home/opencoder/.local/state/opencode", "mode": "rw"},
    }
    assert kwargs["mem_limit"] == "2g"
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"} and kwargs["detach"] is True
    labels = kwargs["labels"]
    assert labels[label("instance")] == "t1"
    stored = json.loads(labels[spec.SUMMARY_LABEL])
    assert stored == spec.settings_summary(config, "sha256:img", True, login_digest(CREDS))
    assert "s3cret-pw" not in labels[spec.SUMMARY_LABEL]


def test_container_kwargs_without_cockpit_or_memory_limit() -> None:
    kwargs = spec.container_kwargs(Config(memory_limit=None, watchdog=False), ServiceNames(),
                                   "i", CREDS)
    assert kwargs["ports"] == {"3000/tcp": ("127.0.0.1", 3000)}
    assert "mem_limit" not in kwargs
    assert kwargs["environment"][-2:] == ["OCC_COCKPIT_ENABLED=0", "OCC_WATCHDOG=0"]
    assert kwargs["name"] == "opencode-cloud-sandbox"


@pytest.mark.parametrize(("address", "port", "url"), [
    ("127.0.0.1", 3000, "http://127.0.0.1:3000"),
    ("0.0.0.0", 3000, "http://127.0.0.1:3000"),
    ("::", 8080, "http://[::1]:8080"),
    ("::1", 8080, "http://[::1]:8080"),
    ("192.168.1.5", 80, "http://192.168.1.5:80"),
])
def test_url_for(address: str, port: int, url: str) -> None:
    assert spec.url_for(address, port) == url


def test_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCC_INSTANCE", raising=False)
    assert ServiceNames.from_environment().container == "opencode-cloud-sandbox"
    monkeypatch.setenv("OCC_INSTANCE", "occ-test.2")
    names = ServiceNames.from_environment()
    assert (names.container, names.credentials_volume) == ("occ-test.2-sandbox", "occ-test.2-data")
    monkeypatch.setenv("OCC_INSTANCE", "Bad Name")
    with pytest.raises(OccError, match="OCC_INSTANCE 'Bad Name' is not a valid name"):
        ServiceNames.from_environment()
