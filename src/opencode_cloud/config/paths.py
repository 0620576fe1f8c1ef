"""Where occ keeps its files. XDG on every Unix (macOS too, like the original occ)."""

from __future__ import annotations

from pathlib import Path

APP_NAME = "opencode-cloud"


def _dirs():  # platformdirs' Unix flavour honours XDG_CONFIG_HOME / XDG_DATA_HOME
    from platformdirs.unix import Unix

    return Unix(APP_NAME)


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/opencode-cloud`` (default ``~/.config/opencode-cloud``)."""
    return _dirs().user_config_path


def data_dir() -> Path:
    """``$XDG_DATA_HOME/opencode-cloud`` (default ``~/.local/share/opencode-cloud``)."""
    return _dirs().user_data_path


def config_file() -> Path:
    return config_dir() / "config.json"


def hosts_file() -> Path:
    return config_dir() / "hosts.json"
