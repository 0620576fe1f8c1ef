"""XDG base directories: an absolute variable wins, anything else means the default."""

from pathlib import Path

import pytest

from opencode_cloud.config import paths


def test_xdg_variables_are_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    assert paths.config_file() == tmp_path / "c" / "opencode-cloud" / "config.json"
    assert paths.hosts_file() == tmp_path / "c" / "opencode-cloud" / "hosts.json"
    assert paths.data_dir() == tmp_path / "d" / "opencode-cloud"


@pytest.mark.parametrize("value", [None, "", "  ", "relative/dir"])
def test_unset_empty_or_relative_means_the_default(monkeypatch, tmp_path, value):
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert paths.config_dir() == Path(tmp_path) / ".config" / "opencode-cloud"
    assert paths.data_dir() == Path(tmp_path) / ".local" / "share" / "opencode-cloud"
