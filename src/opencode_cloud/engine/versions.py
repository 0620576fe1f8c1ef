"""Remember each remote Engine's API version, so a command skips version negotiation.

Negotiating costs a request (two round trips over SSH) on every command; the version of
a host's Engine changes only when Docker there is upgraded, and then it is learnt again.
"""

from __future__ import annotations

import json

from opencode_cloud.config import paths
from opencode_cloud.storage import safe_file


def _file():
    return paths.data_dir() / "engine-versions.json"


def _load(text: str | None) -> dict[str, str]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}  # a cache: a damaged one is simply rebuilt
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def known_version(key: str) -> str | None:
    return _load(safe_file.read_text(_file())).get(key)


def remember_version(key: str, version: str | None) -> None:
    def change(text: str | None) -> str:
        data = _load(text)
        if version is None:
            data.pop(key, None)
        else:
            data[key] = version
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    safe_file.update_text(_file(), change)
