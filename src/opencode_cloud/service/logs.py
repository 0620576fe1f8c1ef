"""Read the service's log lines, optionally following and filtering them."""

from __future__ import annotations

from collections.abc import Iterator

from opencode_cloud.errors import NotRunningError
from opencode_cloud.service.context import ServiceContext


def log_lines(
    ctx: ServiceContext, lines: int | None, follow: bool, timestamps: bool, grep: str | None
) -> Iterator[str]:
    """Whole lines of the container's output (``lines`` None = all of it)."""
    container = ctx.container()
    if container is None:
        raise NotRunningError(
            "there is no opencode container yet", hint="Start the service with: occ start"
        )
    chunks = container.logs(
        stream=True, follow=follow, timestamps=timestamps, tail="all" if lines is None else lines
    )
    for line in _split_lines(chunks):
        if grep is None or grep in line:
            yield line


def _split_lines(chunks) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace")
