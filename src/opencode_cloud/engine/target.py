"""Resolve which machine a container command acts on, and yield its Docker endpoint."""

from __future__ import annotations

from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.errors import OccError


def resolve_endpoint(host: str | None, force_local: bool) -> DockerEndpoint:
    """``--local`` or ``--host local`` or no host: this machine's Engine."""
    if force_local or host in (None, "local"):
        return DockerEndpoint.from_environment()
    raise OccError(
        f"running container commands on remote host '{host}' is not available in this version",
        hint="Run the command on that server itself, or without --host for this machine.",
    )
