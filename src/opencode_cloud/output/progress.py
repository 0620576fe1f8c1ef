"""Spinners and progress bars for long waits (image builds and pulls, readiness)."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator

from opencode_cloud.output.printer import Printer


class StepProgress:
    """A spinner showing the current step, keeping the last lines for error messages.

    With -v every line is printed as it comes.
    """

    def __init__(self, printer: Printer, status, verbose: bool, keep: int = 25) -> None:
        self._printer = printer
        self._status = status
        self._verbose = verbose
        self.tail: deque[str] = deque(maxlen=keep)

    def step(self, text: str) -> None:
        if self._status is not None:
            self._status.update(self._printer.prefix(False) + text)
        self.line(text)

    def line(self, text: str) -> None:
        self.tail.append(text)
        if self._verbose:
            self._printer.detail(text)


@contextlib.contextmanager
def step_progress(printer: Printer, title: str, verbose: bool = False) -> Iterator[StepProgress]:
    console = printer.rich_console()
    if printer.quiet or not console.is_terminal:
        printer.line(title)
        yield StepProgress(printer, None, verbose)
        return
    with console.status(printer.prefix(False) + title) as status:
        yield StepProgress(printer, status, verbose)


class ByteProgress:
    """Aggregated download progress over many layers (docker pull)."""

    def __init__(self, progress, task) -> None:
        self._progress = progress
        self._task = task
        self._layers: dict[str, tuple[int, int]] = {}

    def layer(self, layer_id: str, current: int, total: int) -> None:
        self._layers[layer_id] = (current, total)
        if self._progress is not None:
            done = sum(c for c, _ in self._layers.values())
            whole = sum(t for _, t in self._layers.values())
            self._progress.update(self._task, completed=done, total=whole or None)


@contextlib.contextmanager
def byte_progress(printer: Printer, title: str) -> Iterator[ByteProgress]:
    console = printer.rich_console()
    if printer.quiet or not console.is_terminal:
        printer.line(title)
        yield ByteProgress(None, None)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    columns = (TextColumn(printer.prefix(False) + title), BarColumn(), DownloadColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield ByteProgress(progress, progress.add_task(title, total=None))
