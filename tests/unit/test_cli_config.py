"""The real ``occ`` CLI on config.json: round trips, clear errors, concurrency, modes."""

import json
import re
import stat

import pytest

from opencode_cloud import __version__


def test_version_and_help(occ):
    assert occ("--version", check=True).stdout.strip() == f"occ, version {__version__}"
    help_text = occ("--help", check=True).stdout
    assert "config" in help_text and "--host NAME" in help_text


def test_opencode_cloud_alias_is_the_same_program(occ, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "opencode-cloud"
    assert exe.exists(), "the opencode-cloud console script must be installed with the package"
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, env=occ.env)
    assert result.stdout.strip() == f"occ, version {__version__}"


def test_set_get_show_round_trip(occ):
    occ("config", "set", "opencode_web_port", "3100", check=True)
    occ("config", "set", "cockpit_enabled", "true", check=True)
    assert occ("config", "get", "opencode_web_port", check=True).stdout.strip() == "3100"
    shown = json.loads(occ("config", "show", "--json", check=True).stdout)
    assert shown["opencode_web_port"] == 3100
    assert shown["cockpit_enabled"] is True
    on_disk = json.loads(occ.config_file.read_text())
    assert on_disk == shown
    # Keys are aligned to the longest one (oauth_callback_ports since issue 14).
    assert re.search(r"^opencode_web_port:\s+3100$", occ("config", "show", check=True).stdout,
                     re.MULTILINE)


def test_env_set_list_remove(occ):
    occ("config", "env", "set", "TZ=Europe/Berlin", check=True)
    occ("config", "env", "set", "A=1", check=True)
    occ("config", "env", "set", "TZ=UTC", check=True)  # replaces, keeps one entry per name
    assert occ("config", "env", "list", "--show-secrets", check=True).stdout.split() == [
        "A=1", "TZ=UTC"]
    occ("config", "env", "remove", "A", check=True)
    assert occ("config", "env", "list", "--show-secrets", check=True).stdout.split() == [
        "TZ=UTC"]
    assert occ("config", "env", "list", check=True).stdout.split() == ["TZ=…(hidden)"]
    missing = occ("config", "env", "remove", "A")
    assert missing.returncode == 1 and "no container variable named 'A'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("config", "set", "opencode_web_port", "70000"), "port number from 1 to 65535"),
        (("config", "set", "opencode_web_port", "0"), "port number from 1 to 65535"),
        (("config", "set", "opencode_web_port", "abc"), "takes a whole number"),
        (("config", "set", "bind_address", "my-laptop"), "must be an IPv4 or IPv6 address"),
        (("config", "set", "cockpit_enabled", "perhaps"), "takes true or false"),
        (("config", "set", "colour", "blue"), "unknown config key 'colour'"),
        (("config", "set", "image_source", "hub"), "image_source"),
        (("config", "env", "set", "NOVALUE"), "is not KEY=VALUE"),
        (("config", "env", "set", "1BAD=x"), "must look like KEY=value"),
    ],
)
def test_bad_input_clear_error_exit_1_file_unchanged(occ, args, message):
    occ("config", "set", "opencode_web_port", "3100", check=True)
    before = occ.config_file.read_bytes()
    result = occ(*args)
    assert result.returncode == 1, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Hint: " in result.stderr or "Known keys" in result.stderr or message in result.stderr
    assert occ.config_file.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"colour": "blue"}', "unknown key 'colour'"),
        ('{"opencode_web_port": "3000"}', "opencode_web_port"),
        ('{"opencode_web_port": 99999}', "opencode_web_port"),
        ('{"bind_address": "example.com"}', "bind_address"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_hand_edited_bad_file_is_reported_not_replaced(occ, content, message):
    occ.config_dir.mkdir(parents=True)
    occ.config_file.write_text(content)
    for args in (("config", "show"), ("config", "set", "cockpit_port", "9091")):
        result = occ(*args)
        assert result.returncode == 1
        assert message in result.stderr and str(occ.config_file) in result.stderr
        assert "Traceback" not in result.stderr
    assert occ.config_file.read_text() == content


def test_jsonc_file_is_read(occ):
    occ.config_dir.mkdir(parents=True)
    occ.config_file.write_text('{\n  // my port\n  "opencode_web_port": 3300,\n}\n')
    assert occ("config", "get", "opencode_web_port", check=True).stdout.strip() == "3300"


def test_traceback_only_with_vv(occ):
    occ.config_dir.mkdir(parents=True)
    occ.config_file.write_text("{not json")
    assert "Traceback" not in occ("config", "show", "-v").stderr
    assert "Traceback" in occ("config", "show", "-vv").stderr


def test_usage_error_exits_2(occ):
    result = occ("config", "set", "opencode_web_port")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
    assert occ("no-such-command").returncode == 2


def test_global_options_before_and_after_subcommand(occ):
    assert occ("-q", "config", "set", "cockpit_port", "9091", check=True).stdout == ""
    assert occ("config", "set", "cockpit_port", "9092", "-q", check=True).stdout == ""
    assert occ("config", "set", "cockpit_port", "9093", "--no-color", check=True).stdout


def test_config_refuses_a_remote_host(occ):
    result = occ("config", "show", "--host", "prod-1")
    assert result.returncode == 1
    assert "does not take --host" in result.stderr
    assert occ("config", "show", "--host", "local").returncode == 0


def test_non_loopback_bind_address_warns(occ):
    result = occ("config", "set", "bind_address", "0.0.0.0", check=True)
    assert "reachable from the network" in result.stderr


def test_reset_needs_confirmation_without_a_terminal(occ):
    occ("config", "set", "opencode_web_port", "3100", check=True)
    refused = occ("config", "reset")
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert json.loads(occ.config_file.read_text())["opencode_web_port"] == 3100
    occ("config", "reset", "--force", check=True)
    assert json.loads(occ.config_file.read_text())["opencode_web_port"] == 3000


def test_twenty_concurrent_writers_all_land(occ):
    occ("config", "show", check=True)  # nothing written yet: writers race on a missing file
    writers = [
        occ.popen("config", "env", "set", f"VAR_{i}=value-{i}", stdout=-1, stderr=-1)
        for i in range(14)
    ]
    keys = {
        "opencode_web_port": "3101",
        "cockpit_port": "9101",
        "cockpit_enabled": "true",
        "bind_address": "::1",
        "opencode_version": "1.18.30",
        "memory_limit": "2g",
    }
    writers += [
        occ.popen("config", "set", key, value, stdout=-1, stderr=-1) for key, value in keys.items()
    ]
    assert len(writers) == 20
    for proc in writers:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    final = json.loads(occ.config_file.read_text())
    assert sorted(final["container_env"]) == sorted(f"VAR_{i}=value-{i}" for i in range(14))
    assert final["opencode_web_port"] == 3101 and final["cockpit_port"] == 9101
    assert final["cockpit_enabled"] is True and final["bind_address"] == "::1"
    assert final["opencode_version"] == "1.18.30" and final["memory_limit"] == "2g"


def test_file_and_folder_modes(occ):
    occ("config", "set", "cockpit_port", "9091", check=True)
    assert stat.S_IMODE(occ.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(occ.config_dir.stat().st_mode) == 0o700
