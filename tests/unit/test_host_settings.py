"""Per-host overrides of config.json (hosts.json "settings"), from the CLI and by hand."""

from __future__ import annotations

import json

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.config.store import with_overrides
from opencode_cloud.hosts.model import FieldError, HostConfig


def test_overrides_apply_on_top_of_config_json():
    config = Config(opencode_web_port=3000, memory_limit="4g")
    merged = with_overrides(config, {"opencode_web_port": 3100}, "hosts.json")
    assert merged.opencode_web_port == 3100 and merged.memory_limit == "4g"
    assert with_overrides(config, {}, "hosts.json") is config


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour": 1}, "unknown config key 'colour'"),
        ({"opencode_web_port": 0}, "port number from 1 to 65535"),
        ({"bind_address": "example.com"}, "IPv4 or IPv6"),
        ({"cockpit_enabled": "yes"}, "cockpit_enabled"),
        ([1, 2], "must be an object"),
    ],
)
def test_bad_settings_name_the_field(settings, message):
    with pytest.raises(FieldError) as info:
        HostConfig.from_dict({"hostname": "web1", "settings": settings})
    assert info.value.field == "settings" and message in info.value.message


def test_settings_round_trip_and_are_written_only_when_set():
    plain = HostConfig.from_dict({"hostname": "web1"})
    assert "settings" not in plain.to_json()
    tuned = HostConfig.from_dict({"hostname": "web1", "settings": {"memory_limit": "8g"}})
    assert tuned.to_json()["settings"] == {"memory_limit": "8g"}
    assert HostConfig.from_dict(tuned.to_json()) == tuned


def test_cli_set_unset_show(occ):
    occ("host", "add", "web1", "203.0.113.10", "--no-verify", check=True)
    occ("host", "edit", "web1", "--set", "opencode_web_port=3100", "--set", "memory_limit=8g",
        "--set", "cockpit_enabled=true", check=True)
    entry = json.loads((occ.config_dir / "hosts.json").read_text())["hosts"]["web1"]
    assert entry["settings"] == {"opencode_web_port": 3100, "memory_limit": "8g",
                                 "cockpit_enabled": True}
    occ("host", "edit", "web1", "--unset", "memory_limit", check=True)
    shown = json.loads(occ("host", "show", "web1", "--json", check=True).stdout)
    assert shown["config"]["settings"] == {"opencode_web_port": 3100, "cockpit_enabled": True}
    assert "setting opencode_web_port: 3100" in occ("host", "show", "web1", check=True).stdout
    # config.json itself is untouched
    assert json.loads(occ("config", "show", "--json", check=True).stdout)["opencode_web_port"] \
        == 3000


@pytest.mark.parametrize("value", ["opencode_web_port=0", "nope=1", "no-equals"])
def test_cli_bad_set_is_refused_and_changes_nothing(occ, value):
    occ("host", "add", "web1", "203.0.113.10", "--no-verify", check=True)
    before = (occ.config_dir / "hosts.json").read_bytes()
    result = occ("host", "edit", "web1", "--set", value)
    assert result.returncode == 2 and "--set" in result.stderr
    assert (occ.config_dir / "hosts.json").read_bytes() == before


def test_hand_edited_bad_settings_stop_container_commands(occ):
    occ.config_dir.mkdir(parents=True)
    (occ.config_dir / "hosts.json").write_text(json.dumps({
        "version": 1, "default_host": "web1",
        "hosts": {"web1": {"hostname": "203.0.113.10", "settings": {"opencode_web_port": -1}}},
    }))
    result = occ("status")
    assert result.returncode == 1
    assert "web1" in result.stderr and "settings" in result.stderr
    assert "Traceback" not in result.stderr
