from pathlib import Path

import pytest

from opencode_cloud.config import store
from opencode_cloud.config.model import Config
from opencode_cloud.errors import ConfigError


def test_defaults_match_the_original_occ():
    config = Config()
    assert config.opencode_web_port == 3000
    assert config.bind_address == "127.0.0.1"
    assert config.cockpit_enabled is False
    assert config.cockpit_port == 9090
    assert config.container_env == []
    assert config.image_source == "build"
    assert not config.exposed_to_network


def test_round_trip_through_text(tmp_path: Path):
    original = Config(opencode_web_port=3100, container_env=["A=1", "B=x=y"], cockpit_enabled=True)
    assert store.parse_config(store.render(original), tmp_path / "c.json") == original


def test_jsonc_comments_and_trailing_commas_are_accepted(tmp_path: Path):
    text = """{
      // the port people open in their browser
      "opencode_web_port": 3200, /* block comment */
      "bind_address": "::1",
    }"""
    config = store.parse_config(text, tmp_path / "c.json")
    assert config.opencode_web_port == 3200
    assert config.bind_address == "::1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"colour": 1}', "unknown key 'colour'"),
        ('{"opencode_web_port": "3000"}', "key 'opencode_web_port' is invalid"),
        ('{"opencode_web_port": 70000}', "port number from 1 to 65535"),
        ('{"cockpit_port": 0}', "port number from 1 to 65535"),
        ('{"bind_address": "localhost"}', "must be an IPv4 or IPv6 address"),
        ('{"cockpit_enabled": "yes"}', "key 'cockpit_enabled' is invalid"),
        ('{"container_env": ["NOEQUALS"]}', "must look like KEY=value"),
        ('{"image_source": "docker-hub"}', "key 'image_source' is invalid"),
        ('{"opencode_version": "latest; rm -rf /"}', "release version"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"opencode_web_port": 3000', "is not valid JSON"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "config.json"
    with pytest.raises(ConfigError) as info:
        store.parse_config(text, path)
    assert expected in info.value.message
    assert str(path) in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("opencode_web_port", "3100", 3100),
        ("cockpit_enabled", "true", True),
        ("cockpit_enabled", "off", False),
        ("extra_ca_certs", "", None),
        ("container_env", '["A=1"]', ["A=1"]),
        ("bind_address", "0.0.0.0", "0.0.0.0"),
    ],
)
def test_command_line_values_are_coerced(key: str, raw: str, value):
    assert store.coerce_value(key, raw) == value


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("opencode_web_port", "three"),
        ("cockpit_enabled", "maybe"),
        ("nope", "1"),
        ("container_env", "A=1"),
    ],
)
def test_bad_command_line_values_are_refused(key: str, raw: str):
    with pytest.raises(ConfigError):
        store.coerce_value(key, raw)
