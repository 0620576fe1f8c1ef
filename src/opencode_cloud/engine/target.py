"""Resolve which machine a container command acts on, and yield its Docker endpoint."""

from __future__ import annotations

import contextlib

from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.report import Reporter


def resolve_host(host_option: str | None, force_local: bool):
    """``--local``/``--host local`` → None (this machine); ``--host NAME`` → that host;
    else hosts.json's default host, else None. A hosts.json that cannot be read is an
    error, never a silent fallback to this machine."""
    from opencode_cloud.hosts.store import resolve_target

    return resolve_target(host_option, force_local)


def engine_for(host, reporter: Reporter) -> contextlib.AbstractContextManager[DockerEndpoint]:
    """A context manager yielding the endpoint of ``host`` (None = this machine)."""
    if host is None:
        return contextlib.nullcontext(DockerEndpoint.from_environment())
    from opencode_cloud.engine.remote import RemoteEngine

    return RemoteEngine(host, reporter)

