"""Which image reference the service runs (light: status needs it, not the build code)."""

from __future__ import annotations

from opencode_cloud.config.model import Config


def image_ref(config: Config) -> str:
    """The tag the service runs: ``image`` with the opencode version as tag unless it has one."""
    last = config.image.rsplit("/", 1)[-1]
    if "@" in config.image or ":" in last:
        return config.image
    return f"{config.image}:{config.opencode_version}"


def repository(ref: str) -> str:
    """``ref`` without its tag or digest: ``reg:5000/a/b:1.2`` -> ``reg:5000/a/b``."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}" if head else name


def service_ref(config: Config) -> str:
    """The tag the service's container runs: ``image_ref``, or with ``image_dockerfile``
    the tag of the image built from it on top (``<repository>:<tag>-custom``)."""
    ref = image_ref(config)
    if not config.image_dockerfile:
        return ref
    tag = "" if "@" in ref else ref.rsplit("/", 1)[-1].partition(":")[2]
    return f"{repository(ref)}:{tag + '-' if tag else ''}custom"
