"""Parse /etc/os-release (freedesktop.org format) into what the install plans need."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class OsRelease:
    id: str
    id_like: tuple[str, ...]
    version_id: str
    pretty_name: str

    @property
    def ids(self) -> tuple[str, ...]:
        """The distribution's own id first, then the ones it declares itself like."""
        return (self.id, *self.id_like)


def parse_os_release(text: str) -> OsRelease:
    """Values may be quoted shell-style; unknown or missing keys are tolerated."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = parts[0] if parts else ""
    return OsRelease(
        id=values.get("ID", "linux").lower(),
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        version_id=values.get("VERSION_ID", ""),
        pretty_name=values.get("PRETTY_NAME") or values.get("NAME") or "Linux",
    )
