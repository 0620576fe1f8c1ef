"""Replacing the service's container so that a host is never left without its service.

An update, or a start that must recreate the container for new settings, goes through
these steps, each reported as a checkpoint:

1. ``image-ready``: the new image is there; nothing of the service has changed.
2. ``old-stopped``: the old container is stopped and renamed ``<container>-replaced``
   (kept, with its settings, until the new one is healthy).
3. ``new-created``: the new container exists under the service's name.
4. ``new-started``: it runs; occ waits until it is healthy, then removes the old one.

Before step 1 occ makes a marker volume ``<instance>-operation`` whose labels say which
operation began, when and from which machine; it is removed once the service is in one
piece again. The marker lives on the target's Engine, not in this machine's files, so
``occ status`` names a half-finished operation from any machine, and the next ``occ start``
or ``occ update`` there (from any machine) finishes or rolls it back: :func:`recover`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opencode_cloud.engine.labels import label
from opencode_cloud.service.context import ServiceContext

OPERATION_LABEL = label("operation")
STARTED_LABEL = label("operation.started")
BY_LABEL = label("operation.by")
WAS_RUNNING_LABEL = label("operation.was-running")
REPLACED_SUFFIX = "-replaced"
STOPPED_STATES = ("created", "exited", "dead")
# The steps, in order, as reported through Reporter.checkpoint.
IMAGE_READY, OLD_STOPPED, NEW_CREATED, NEW_STARTED = (
    "image-ready", "old-stopped", "new-created", "new-started")
STEP_WORDS = {
    IMAGE_READY: "the new image was ready, nothing else had changed",
    OLD_STOPPED: "the old container was stopped, no new one yet",
    NEW_CREATED: "the new container was created but not started",
    NEW_STARTED: "the new container was started, the old one not yet removed",
}


@dataclass(frozen=True)
class Pending:
    """An operation whose marker is on the Engine: still running elsewhere, or cut off."""

    operation: str
    started_at: str
    by: str
    step: str | None = None  # one of STEP_WORDS, when known

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "started_at": self.started_at, "by": self.by,
                "step": self.step}

    def describe(self) -> str:
        where = f" ({STEP_WORDS[self.step]})" if self.step in STEP_WORDS else ""
        return (f"'occ {self.operation}', started {self.started_at} by {self.by}, has not "
                f"finished{where}")


def marker_labels(operation: str, was_running: bool, now: datetime | None = None,
                  by: str | None = None) -> dict[str, str]:
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {OPERATION_LABEL: operation, STARTED_LABEL: when,
            BY_LABEL: by or f"occ on {socket.gethostname()} (pid {os.getpid()})",
            WAS_RUNNING_LABEL: "1" if was_running else "0"}


def pending_from(volume_attrs: dict[str, Any] | None,
                 replaced_status: str | None = None,
                 current_status: str | None = None) -> Pending | None:
    """The marker volume's inspect -> what it says; the containers' states give the step."""
    if not volume_attrs:
        return None
    labels = volume_attrs.get("Labels") or {}
    if OPERATION_LABEL not in labels:
        return None
    return Pending(labels[OPERATION_LABEL], labels.get(STARTED_LABEL, "?"),
                   labels.get(BY_LABEL, "?"), step_reached(replaced_status, current_status))


def step_reached(replaced_status: str | None, current_status: str | None) -> str:
    """How far a switch got, from the states of the replaced and the current container."""
    if replaced_status is None:
        return IMAGE_READY
    if current_status is None:
        return OLD_STOPPED
    return NEW_STARTED if current_status == "running" else NEW_CREATED


def replaced_name(ctx: ServiceContext) -> str:
    return ctx.names.container + REPLACED_SUFFIX


def _get(collection, name: str):
    from docker.errors import NotFound

    try:
        return collection.get(name)
    except NotFound:
        return None


def recover(ctx: ServiceContext) -> str | None:
    """Put a service a cut-off operation left in pieces back together; returns what was done
    (None: nothing was pending). A new container that runs is kept (the operation is
    finished); otherwise the replaced one comes back as it was."""
    marker = _get(ctx.client.volumes, ctx.names.operation_marker)
    replaced = _get(ctx.client.containers, replaced_name(ctx))
    if marker is None and replaced is None:
        return None
    current = ctx.container()
    pending = pending_from(marker.attrs if marker else None,
                           replaced.status if replaced else None,
                           current.status if current else None)
    what = pending.describe() if pending else "an operation left the old container behind"
    if replaced is None:
        done = "the service was not touched; nothing to undo"
    elif current is not None and current.status == "running":
        _remove(replaced)
        done = "the new container runs: finished by removing the old one"
    else:
        if current is not None:
            _remove(current)  # half-made: the old container is what the host had
        replaced.rename(ctx.names.container)
        was_running = marker is None or (marker.attrs.get("Labels") or {}).get(
            WAS_RUNNING_LABEL, "1") == "1"
        if was_running:
            replaced.start()
        done = "rolled back to the container it replaced"
    if marker is not None:
        with contextlib.suppress(Exception):
            marker.remove(force=True)
    message = f"Found {what} {ctx.endpoint.where}: {done}."
    ctx.reporter.warn(message)
    return message


@contextlib.contextmanager
def operation(ctx: ServiceContext, name: str, was_running: bool) -> Iterator[None]:
    """The marker around one switch. Nested calls (a start inside an update) share the
    outer one. The marker goes when the block ends with the service in one piece (no
    replaced container left), also after a handled failure; a cut-off leaves it."""
    if ctx.operation is not None:
        yield
        return
    marker = ctx.client.volumes.create(name=ctx.names.operation_marker,
                                       labels=marker_labels(name, was_running))
    ctx.operation = name
    try:
        yield
    finally:
        ctx.operation = None
        with contextlib.suppress(Exception):  # the connection may be gone: then it stays
            if _get(ctx.client.containers, replaced_name(ctx)) is None:
                marker.remove(force=True)


def retire(ctx: ServiceContext, container) -> Any:
    """Step 2: stop the old container and keep it aside under the replaced name."""
    leftover = _get(ctx.client.containers, replaced_name(ctx))
    if leftover is not None and leftover.id != container.id:
        _remove(leftover)
    if container.status == "paused":
        container.unpause()
    if container.status not in STOPPED_STATES:
        # Also a container in a restart loop: Docker counts it as running, and renaming it
        # then fails with "sandbox ... not found" whenever it is between two restarts.
        container.stop(timeout=30)
    container.rename(replaced_name(ctx))
    ctx.reporter.checkpoint(OLD_STOPPED)
    return container


def restore(ctx: ServiceContext, retired, was_running: bool) -> None:
    """The new container could not be made or started: the old one comes back."""
    current = ctx.container()
    if current is not None and current.id != retired.id:
        _remove(current)
    retired.rename(ctx.names.container)
    if was_running:
        retired.start()


def _remove(container) -> None:
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        container.remove(force=True)
