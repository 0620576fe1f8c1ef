"""The labels occ puts on the Docker objects it makes (images, containers, volumes)."""

from __future__ import annotations

LABEL_PREFIX = "dev.opencode-cloud"


def label(name: str) -> str:
    return f"{LABEL_PREFIX}.{name}"
