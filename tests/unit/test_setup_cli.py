"""`occ setup`'s wiring without Docker: which target it picks, where the answers are saved,
and that a new host goes through `occ host add` itself. Click's test runner types the
answers; the start at the end is replaced by a recorder (the real walk, with Docker and a
pseudo-terminal, is tests/integration/test_setup.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opencode_cloud.cli import service_target
from opencode_cloud.cli.commands import setup as setup_cmd
from opencode_cloud.cli.main import cli
from opencode_cloud.cli.state import AppState

pytestmark = pytest.mark.unit

HOSTS = {"version": 1, "default_host": None,
         "hosts": {"web1": {"hostname": "203.0.113.10", "user": "deploy"}}}


@pytest.fixture
def started(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Pretend to be in a terminal; record the start instead of doing it."""
    calls: list[dict] = []
    monkeypatch.setattr(setup_cmd, "interactive", lambda: True)

    def run_repairing(ctx, work, *, assume_yes=False):
        state = ctx.find_root().obj
        calls.append({"host": state.host, "local": state.local, "assume_yes": assume_yes})

    monkeypatch.setattr(service_target, "run_repairing", run_repairing)
    monkeypatch.setattr(setup_cmd, "how_to_log_in", lambda service: None)
    hosts_file = xdg / "config" / "opencode-cloud" / "hosts.json"
    hosts_file.parent.mkdir(parents=True)
    hosts_file.write_text(json.dumps(HOSTS))
    return calls


def run(*args: str, input: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["setup", *args], input=input, obj=AppState(),
                              catch_exceptions=False)


def files(xdg: Path) -> tuple[dict, dict]:
    folder = xdg / "config" / "opencode-cloud"
    config = folder / "config.json"
    return (json.loads(config.read_text()) if config.exists() else {},
            json.loads((folder / "hosts.json").read_text()))


def test_a_host_from_hosts_json_gets_the_answers_as_its_own_settings(
        xdg: Path, started: list[dict]) -> None:
    # where, port, address, Cockpit, one key (name, value), done
    result = run(input="web1\n3100\n\ny\nOPENAI_API_KEY\nsk-openai-0000000000000001\n\n")
    assert result.exit_code == 0, result.output
    assert "  web1   deploy@203.0.113.10" in result.output
    assert "sk-openai-0000000000000001" not in result.output  # typed hidden
    assert "OPENAI_API_KEY=sk-…(hidden)" in result.output
    config, hosts = files(xdg)
    assert config == {}  # config.json untouched: the host's own settings take effect
    assert hosts["default_host"] == "web1"
    assert hosts["hosts"]["web1"]["settings"] == {
        "opencode_web_port": 3100, "cockpit_enabled": True,
        "container_env": ["OPENAI_API_KEY=sk-openai-0000000000000001"]}
    assert started == [{"host": "web1", "local": False, "assume_yes": False}]
    assert "Commands now act on web1 by default" in result.output


def test_host_option_skips_the_where_question_and_keeps_the_default(
        xdg: Path, started: list[dict]) -> None:
    result = run("--host", "web1", input="\n\n\n\n")
    assert result.exit_code == 0, result.output
    assert "Where should opencode run" not in result.output
    assert "nothing changed" in result.output
    config, hosts = files(xdg)
    assert hosts["default_host"] is None and "settings" not in hosts["hosts"]["web1"]
    assert started == [{"host": "web1", "local": False, "assume_yes": False}]


def test_yes_asks_nothing_and_saves_nothing(xdg: Path, started: list[dict]) -> None:
    result = run("--yes", input="")
    assert result.exit_code == 0, result.output
    assert "the current settings" in result.output and "[" not in result.output
    assert files(xdg) == ({}, HOSTS)
    assert started == [{"host": None, "local": False, "assume_yes": True}]


def test_a_new_host_is_added_by_occ_host_add(xdg: Path, started: list[dict],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from opencode_cloud.cli.commands.host import add as add_module

    added: list[dict] = []

    @click.command("add")
    @click.argument("name")
    @click.argument("hostname")
    @click.option("-u", "--user")
    @click.option("-p", "--port")
    @click.option("-i", "--identity-file")
    @click.option("-y", "--yes", "assume_yes", is_flag=True)
    def recording_add(**values):
        added.append(values)
        hosts = json.loads(hosts_file.read_text())
        hosts["hosts"][values["name"]] = {"hostname": values["hostname"]}
        hosts_file.write_text(json.dumps(hosts))

    hosts_file = xdg / "config" / "opencode-cloud" / "hosts.json"
    monkeypatch.setattr(add_module, "add", recording_add)
    # new; a taken name, then a reserved one, then a good one; address; user; port (bad,
    # then empty); key file empty; then every service question at its default
    answers = "new\nweb1\nlocal\nweb2\n198.51.100.7\nops\n99999\n\n\n" + "\n" * 4
    result = run(input=answers)
    assert result.exit_code == 0, result.output
    assert "a host named 'web1' already exists" in result.output
    assert "'local' is reserved" in result.output
    assert "port must be from 1 to 65535 (got 99999)" in result.output
    assert added == [{"name": "web2", "hostname": "198.51.100.7", "user": "ops",
                      "port": None, "identity_file": None, "assume_yes": False}]
    assert files(xdg)[1]["default_host"] == "web2"
    assert started == [{"host": "web2", "local": False, "assume_yes": False}]


def test_this_machine_saves_to_config_json_and_warns_about_exposure(
        xdg: Path, started: list[dict]) -> None:
    result = run(input="local\n\n0.0.0.0\n\n\n")
    assert result.exit_code == 0, result.output
    assert "bind_address 0.0.0.0 makes the web UI reachable from the network" \
        in result.output
    config, hosts = files(xdg)
    assert config["bind_address"] == "0.0.0.0" and hosts == HOSTS
    assert started == [{"host": None, "local": True, "assume_yes": False}]
