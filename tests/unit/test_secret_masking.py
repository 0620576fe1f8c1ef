"""Secrets (container_env values) are masked wherever occ prints config values, in clear
only with --show-secrets; the real CLI, with secrets in config.json and in a host's
settings."""

from __future__ import annotations

import json

import pytest

from opencode_cloud.config.masking import (
    HIDDEN,
    SECRET_KEYS,
    mask_env_entry,
    mask_setting,
    mask_settings,
    mask_value,
)

pytestmark = pytest.mark.unit

GLOBAL_KEY = "sk-ant-api03-GLOBALxSECRETxVALUEx0123456789"
HOST_KEY = "sk-proj-HOSTxSECRETxVALUEx9876543210"
SHORT = "hunter2"  # under 8 characters: nothing of it is shown
GLOBAL_ENV = [f"ANTHROPIC_API_KEY={GLOBAL_KEY}", f"DB_PASSWORD={SHORT}"]
HOST_ENV = [f"OPENAI_API_KEY={HOST_KEY}"]
# What must never be printed without --show-secrets (the short one only as a whole value:
# "hunter2" could be part of some other word, so it is checked as "=hunter2").
SECRETS = (GLOBAL_KEY, HOST_KEY, "GLOBALxSECRET", "HOSTxSECRET", f"={SHORT}")


# -- the rule -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", HIDDEN),
        ("1234567", HIDDEN),  # under 8: no prefix
        ("12345678", "1" + HIDDEN),  # an eighth of the value at most
        ("sk-ant-api03-abcdefgh", "sk" + HIDDEN),
        (GLOBAL_KEY, "sk-" + HIDDEN),  # at most 3
    ],
)
def test_mask_value_shows_a_short_prefix_at_most(value, shown):
    assert mask_value(value) == shown


def test_mask_value_hides_the_length():
    assert mask_value("a" * 30) == mask_value("a" * 300)


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        (f"ANTHROPIC_API_KEY={GLOBAL_KEY}", "ANTHROPIC_API_KEY=sk-" + HIDDEN),
        ("TZ=Europe/Berlin", "TZ=E" + HIDDEN),
        ("EMPTY=", "EMPTY=" + HIDDEN),
        ("A=b=c=dddddddddddddddd", "A=b=" + HIDDEN),
        # not NAME=value (a key typed without its name): masked whole
        (GLOBAL_KEY, "sk-" + HIDDEN),
        (f"1BAD={GLOBAL_KEY}", "1BA" + HIDDEN),
        (f"sk-ant=={GLOBAL_KEY}", "sk-" + HIDDEN),
    ],
)
def test_mask_env_entry_keeps_the_name(entry, shown):
    assert mask_env_entry(entry) == shown


def test_container_env_is_secret_and_other_keys_are_not():
    assert "container_env" in SECRET_KEYS
    assert mask_setting("container_env", [f"A={GLOBAL_KEY}"]) == ["A=sk-" + HIDDEN]
    assert mask_setting("opencode_web_port", 3100) == 3100
    assert mask_setting("image", "opencode-cloud-sandbox") == "opencode-cloud-sandbox"
    assert mask_settings({"memory_limit": "8g", "container_env": [f"A={SHORT}"]}) == {
        "memory_limit": "8g", "container_env": ["A=" + HIDDEN]}


@pytest.mark.parametrize(
    "value",
    [GLOBAL_KEY, {"ANTHROPIC_API_KEY": GLOBAL_KEY}, [f"A={GLOBAL_KEY}", 5, None],
     [[GLOBAL_KEY]], 12345678901234567890],
)
def test_a_secret_key_of_the_wrong_shape_is_masked_too(value):
    # what an error message quotes of a hand-edited file
    assert "GLOBALxSECRET" not in repr(mask_setting("container_env", value))
    assert "12345678901234567890" not in repr(mask_setting("container_env", value))


# -- the CLI ---------------------------------------------------------------------------------
@pytest.fixture
def with_secrets(occ):
    occ.config_dir.mkdir(parents=True)
    occ.config_file.write_text(json.dumps({"container_env": GLOBAL_ENV}))
    occ("host", "add", "web1", "203.0.113.10", "-u", "deploy", "--no-verify", check=True)
    occ("host", "edit", "web1", "--set", f"container_env={json.dumps(HOST_ENV)}",
        "--set", "memory_limit=8g", check=True)
    return occ


def assert_hidden(result, *, and_host: bool = False):
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout, (secret, result.stdout)
        assert secret not in result.stderr, (secret, result.stderr)
    # and the masked form is there instead (JSON spells the ellipsis \u2026)
    text = result.stdout.replace("\\u2026", "…")
    assert "ANTHROPIC_API_KEY=sk-…(hidden)" in text or and_host
    if and_host:
        assert "OPENAI_API_KEY=sk-…(hidden)" in text


COMMANDS = [
    (("config", "show"), False),
    (("config", "show", "--json"), False),
    (("config", "get", "container_env"), False),
    (("config", "env", "list"), False),
    (("host", "show", "web1"), True),
    (("host", "show", "web1", "--json"), True),
]


@pytest.mark.parametrize(("args", "host"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_no_command_prints_a_secret_without_show_secrets(with_secrets, args, host):
    assert_hidden(with_secrets(*args), and_host=host)


@pytest.mark.parametrize(("args", "host"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_show_secrets_prints_them_in_clear(with_secrets, args, host):
    result = with_secrets(*args, "--show-secrets", check=True)
    expected = HOST_KEY if host else GLOBAL_KEY
    assert expected in result.stdout
    if not host:
        assert f"DB_PASSWORD={SHORT}" in result.stdout


def test_json_output_is_masked_and_well_formed(with_secrets):
    shown = json.loads(with_secrets("config", "show", "--json", check=True).stdout)
    assert shown["container_env"] == ["ANTHROPIC_API_KEY=sk-…(hidden)", "DB_PASSWORD=…(hidden)"]
    clear = json.loads(with_secrets("config", "show", "--json", "--show-secrets",
                                    check=True).stdout)
    assert clear["container_env"] == GLOBAL_ENV
    host = json.loads(with_secrets("host", "show", "web1", "--json", check=True).stdout)
    assert host["config"]["settings"] == {"container_env": ["OPENAI_API_KEY=sk-…(hidden)"],
                                          "memory_limit": "8g"}
    clear = json.loads(with_secrets("host", "show", "web1", "--json", "--show-secrets",
                                    check=True).stdout)
    assert clear["config"]["settings"]["container_env"] == HOST_ENV


def test_config_env_list_masks_each_entry(with_secrets):
    assert with_secrets("config", "env", "list", check=True).stdout.splitlines() == [
        "ANTHROPIC_API_KEY=sk-…(hidden)", "DB_PASSWORD=…(hidden)"]
    assert with_secrets("config", "env", "list", "--show-secrets",
                        check=True).stdout.splitlines() == GLOBAL_ENV


def test_secrets_stay_usable_and_unchanged_on_disk(with_secrets):
    # masking is only how they are shown: the files keep the real values
    assert json.loads(with_secrets.config_file.read_text())["container_env"] == GLOBAL_ENV
    hosts = json.loads((with_secrets.config_dir / "hosts.json").read_text())
    assert hosts["hosts"]["web1"]["settings"]["container_env"] == HOST_ENV


@pytest.mark.parametrize(
    "args",
    [
        ("host", "list", "--json"),
        ("host", "list"),
        ("config", "set", "container_env", json.dumps(GLOBAL_ENV)),
        ("config", "env", "set", f"ANTHROPIC_API_KEY={GLOBAL_KEY}"),
        ("config", "env", "remove", "DB_PASSWORD"),
        ("host", "edit", "web1", "--set", f"container_env={json.dumps(HOST_ENV)}"),
        ("-v", "config", "show"),
    ],
    ids=lambda args: " ".join(args)[:60],
)
def test_other_commands_that_print_config_values_mask_them(with_secrets, args):
    result = with_secrets(*args)
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, (secret, result)


def test_config_set_prints_the_masked_value(with_secrets):
    result = with_secrets("config", "set", "container_env", json.dumps(GLOBAL_ENV), check=True)
    assert 'container_env = ["ANTHROPIC_API_KEY=sk-…(hidden)", "DB_PASSWORD=…(hidden)"]' \
        in result.stdout


# -- error messages quote bad values: never a secret -------------------------------------------
@pytest.mark.parametrize(
    "container_env",
    [
        f"ANTHROPIC_API_KEY={GLOBAL_KEY}",  # a string instead of a list
        {"ANTHROPIC_API_KEY": GLOBAL_KEY},  # an object instead of a list
        [f"ANTHROPIC_API_KEY={GLOBAL_KEY}", 5],  # a non-string entry
        [f"1BAD={GLOBAL_KEY}"],  # a bad name
        [GLOBAL_KEY],  # the value without its name
    ],
)
def test_a_bad_config_json_is_reported_without_its_secret(occ, container_env):
    occ.config_dir.mkdir(parents=True)
    occ.config_file.write_text(json.dumps({"container_env": container_env}))
    for args in (("config", "show"), ("config", "env", "list", "--show-secrets")):
        result = occ(*args)
        assert result.returncode == 1 and "container_env" in result.stderr, result
        assert "GLOBALxSECRET" not in result.stdout + result.stderr, result.stderr


def test_a_bad_env_assignment_is_reported_without_its_secret(occ):
    result = occ("config", "env", "set", f"1BAD={GLOBAL_KEY}")
    assert result.returncode == 1 and "must look like KEY=value" in result.stderr
    assert "GLOBALxSECRET" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "settings",
    [
        {"container_env": [f"OPENAI_API_KEY={HOST_KEY}"], "opencode_web_port": 0},
        {"container_env": f"OPENAI_API_KEY={HOST_KEY}"},
        {"container_env": [f"1BAD={HOST_KEY}"]},
        [f"OPENAI_API_KEY={HOST_KEY}"],  # settings that are not an object
    ],
)
def test_a_bad_hosts_json_is_reported_without_its_secret(occ, settings):
    occ.config_dir.mkdir(parents=True)
    (occ.config_dir / "hosts.json").write_text(json.dumps(
        {"version": 1, "default_host": None,
         "hosts": {"web1": {"hostname": "203.0.113.10", "settings": settings}}}))
    for args in (("host", "list"), ("host", "show", "web1", "--show-secrets")):
        result = occ(*args)
        assert result.returncode == 1 and "settings" in result.stderr, result
        assert "HOSTxSECRET" not in result.stdout + result.stderr, result.stderr


def test_a_bad_host_setting_is_reported_without_its_secret(occ):
    occ("host", "add", "web1", "203.0.113.10", "--no-verify", check=True)
    value = json.dumps([f"1BAD={HOST_KEY}"])
    result = occ("host", "edit", "web1", "--set", f"container_env={value}")
    assert result.returncode != 0 and "container_env" in result.stderr, result
    assert "HOSTxSECRET" not in result.stdout + result.stderr, result.stderr
