"""Rendering a fleet run: one reporter per host, a live view of all of them, the recap.

In a terminal (and without -v) a Rich live view on stderr shows one line per host: a
spinner, the host, its current step and the time it has taken; a host's own lines are
kept and printed, with its ``[NAME]`` prefix, only when it fails. Without a terminal, or
with -v, every line is printed as it comes, prefixed. Either way a recap follows: one row
per host (result, time, reason) and the counts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from opencode_cloud.output.printer import Printer
from opencode_cloud.output.sanitize import sanitize
from opencode_cloud.report import Reporter

KEEP_LINES = 2000
SYMBOL = {"ok": "ok", "failed": "FAILED", "unreachable": "UNREACHABLE", "skipped": "skipped",
          "interrupted": "interrupted", "not started": "not started"}
STYLE = {"ok": "green", "failed": "red", "unreachable": "red", "skipped": "yellow",
         "interrupted": "yellow", "not started": "yellow"}


class HostReporter(Reporter):
    """One host's reporter in a fleet run: keeps every line; prints them as they come only
    when ``stream`` (no live view). Never asks: a fleet run has nobody to ask per host."""

    def __init__(self, printer: Printer, *, stream: bool, verbose: int = 0) -> None:
        self.printer = printer
        self.stream = stream
        self.verbose = verbose
        # (kind, text) of the last lines: what a failure shows, bounded for logs -f
        self.lines: deque[tuple[str, str]] = deque(maxlen=KEEP_LINES)
        self.current = "waiting"
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def _keep(self, kind: str, text: str, *, show: bool = True) -> None:
        with self._lock:
            self.lines.append((kind, text))
        if self.stream and show:
            self._print(kind, text)

    def _print(self, kind: str, text: str) -> None:
        p = self.printer
        {"success": p.success, "warn": p.warn, "notice": p.notice, "detail": p.detail,
         "output": p.raw}.get(kind, p.line)(text)

    def step(self, text: str) -> None:
        self.current = text
        self._keep("info", text)

    def activity(self, text: str) -> None:
        self.current = text
        self._keep("detail", text, show=bool(self.verbose))

    def detail(self, text: str) -> None:
        self._keep("detail", text, show=bool(self.verbose))

    def output(self, text: str) -> None:
        self.current = text
        self._keep("output", text)

    def progress(self, what: str, done: int, total: int | None) -> None:
        share = f" {done * 100 // total}%" if total else ""
        self.current = f"{what}{share}"

    def info(self, text: str) -> None:
        self.current = text
        self._keep("info", text)

    def success(self, text: str) -> None:
        self.current = text
        self._keep("success", text)

    def notice(self, text: str) -> None:
        self.current = text
        self._keep("notice", text)

    def warn(self, text: str) -> None:
        self._keep("warn", text)

    def replay(self) -> None:
        """Print every kept line (verbose details only with -v), with the host's prefix."""
        with self._lock:
            lines = list(self.lines)
        for kind, text in lines:
            if kind != "detail" or self.verbose:
                self._print(kind, text)


class FleetView:
    """The live view of a fleet run (or nothing, when lines are streamed instead)."""

    def __init__(self, reporters: dict[str, HostReporter], *, live: bool, color: bool) -> None:
        self.reporters = reporters
        self.live = live
        self.color = color
        self.finished: dict[str, Any] = {}  # host -> HostResult
        self.begun: set[str] = set()
        self._live: Any = None

    def __enter__(self) -> FleetView:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(stderr=True, no_color=not self.color)
            self._live = Live(self, console=console, refresh_per_second=8, transient=True,
                              redirect_stdout=True, redirect_stderr=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def host_started(self, host: Any) -> None:
        self.begun.add(host.name)
        self.reporters[host.name].started = time.monotonic()

    def host_finished(self, result: Any) -> None:
        self.finished[result.host] = result
        reporter = self.reporters[result.host]
        if not result.ok and not reporter.stream:
            reporter.replay()  # above the live view: the whole story of the failing host
        if result.error is not None:
            reporter.printer.error(result.error)

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for name, reporter in self.reporters.items():
            result = self.finished.get(name)
            if result is not None:
                mark: Any = Text(SYMBOL[result.status][:2].upper() if not result.ok else "ok",
                                 style=STYLE[result.status])
                what, seconds = result.reason or "done", result.seconds
            elif name in self.begun:
                mark, what, seconds = Spinner("dots"), reporter.current, now - reporter.started
            else:
                mark, what, seconds = Text("..", style="dim"), "waiting", 0.0
            table.add_row(mark, Text(f"[{name}]", style="cyan bold"),
                          Text(f"{seconds:5.1f}s", style="dim"),
                          Text(sanitize(what, keep_sgr=False)[:100]))  # may be a log line
        return table


def recap(printer: Printer, results: list[Any], summaries: dict[str, str]) -> None:
    """One row per host (result, time, reason or summary), then the counts."""
    rows = []
    for result in results:
        reason = result.reason if not result.ok else summaries.get(result.host, "")
        rows.append([result.host, SYMBOL[result.status], f"{result.seconds:.1f}s", reason])
    printer.table(["HOST", "RESULT", "TIME", "REASON"], rows)
    printer.line(counts(results))


def counts(results: list[Any]) -> str:
    """``N ok, M failed``; unreachable hosts count as failed and are named as such, then
    the hosts left alone (skipped by a halted rollout, interrupted, not started)."""
    ok = sum(r.ok for r in results)
    failed = sum(r.status in ("failed", "unreachable") for r in results)
    unreachable = sum(r.status == "unreachable" for r in results)
    text = f"{ok} ok, {failed} failed" + (f" ({unreachable} unreachable)" if unreachable else "")
    for status in ("skipped", "interrupted", "not started"):
        n = sum(r.status == status for r in results)
        if n:
            text += f", {n} {status}"
    return text


def result_json(result: Any, value_json: dict[str, Any] | None) -> dict[str, Any]:
    """The command's usual object with ``host`` and ``ok``, or the error of a failure."""
    if result.ok:
        return {"host": result.host, "ok": True, **(value_json or {})}
    error = result.error
    return {"host": result.host, "ok": False, "status": result.status,
            "error": {"message": error.message if error else result.reason,
                      "hint": error.hint if error else None}}
