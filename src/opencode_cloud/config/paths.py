"""Where occ keeps its files: the XDG base directories, on every Unix (macOS too, like the
original occ).

The XDG rule is short: an absolute ``$XDG_CONFIG_HOME`` / ``$XDG_DATA_HOME`` wins, anything
else (unset, empty, relative) means ``~/.config`` / ``~/.local/share``. Written out here
because platformdirs, which does the same on Linux, costs ~7 ms of imports on every command.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "opencode-cloud"


def _xdg(variable: str, default: str) -> Path:
    value = os.environ.get(variable, "").strip()
    base = Path(value) if value and os.path.isabs(value) else Path(default).expanduser()
    return base / APP_NAME


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/opencode-cloud`` (default ``~/.config/opencode-cloud``)."""
    return _xdg("XDG_CONFIG_HOME", "~/.config")


def data_dir() -> Path:
    """``$XDG_DATA_HOME/opencode-cloud`` (default ``~/.local/share/opencode-cloud``)."""
    return _xdg("XDG_DATA_HOME", "~/.local/share")


def config_file() -> Path:
    return config_dir() / "config.json"


def hosts_file() -> Path:
    return config_dir() / "hosts.json"
