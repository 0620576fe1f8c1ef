"""Which image reference the service runs (light: status needs it, not the build code)."""

from __future__ import annotations

from opencode_cloud.config.model import Config


def image_ref(config: Config) -> str:
    """The tag the service runs: ``image`` with the opencode version as tag unless it has one."""
    last = config.image.rsplit("/", 1)[-1]
    if "@" in config.image or ":" in last:
        return config.image
    return f"{config.image}:{config.opencode_version}"
