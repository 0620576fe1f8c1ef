"""``occ start --port N``: saved where it takes effect (config.json, or the host's own
setting for --host H), before any connection is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opencode_cloud.cli import main as cli_main
from opencode_cloud.cli.commands import start as start_module
from opencode_cloud.errors import OccError


class Stop(OccError):
    """Raised instead of connecting: this test is about what was saved before."""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    def no_connection(*_args, **_kwargs):
        raise Stop("not connecting in a unit test")

    monkeypatch.setattr(start_module, "open_service", no_connection)
    return tmp_path / "config" / "opencode-cloud"


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        cli_main.main(list(argv))
    return int(info.value.code or 0)


def test_port_for_a_host_is_saved_as_that_hosts_setting(env: Path, capsys) -> None:
    assert run("host", "add", "web", "web.example", "--no-verify") == 0
    assert run("start", "--port", "3456", "--host", "web") == 1  # stopped at connecting
    hosts = json.loads((env / "hosts.json").read_text())
    assert hosts["hosts"]["web"]["settings"] == {"opencode_web_port": 3456}
    assert not (env / "config.json").exists()  # the global config is untouched
    assert "as web's own setting" in capsys.readouterr().out


def test_port_for_this_machine_goes_to_config_json(env: Path) -> None:
    assert run("start", "--port", "3457", "--local") == 1
    assert json.loads((env / "config.json").read_text())["opencode_web_port"] == 3457
