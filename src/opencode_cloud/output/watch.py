"""Drawing ``status --watch``: a full-screen table that refreshes in a terminal (``q`` or
Ctrl-C ends it and the terminal is left as it was), or one table (or one JSON array per
line) per refresh for monitoring scripts."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import Any

from opencode_cloud.output.printer import Printer

COLUMNS = ["HOST", "SSH", "DOCKER", "STATE", "HEALTH", "OPENCODE", "UPTIME", "CPU", "MEMORY",
           "RESTARTS", "DRIFT", "LAST ERROR"]


def cells(row: Any) -> list[str]:
    from opencode_cloud.service.status import format_bytes, format_duration

    r = row.report or {}
    memory = r.get("memory") or {}
    used = format_bytes(memory.get("used_bytes")) if memory else "-"
    limit = format_bytes(memory.get("limit_bytes")) if memory.get("limit_bytes") else ""
    restarts = "-" if r.get("restarts") is None else str(r["restarts"])
    if r.get("last_restart_reason"):
        restarts += f" ({r['last_restart_reason']})"
    reachable = {"ok": f"{row.round_trip_ms:.0f} ms" if row.round_trip_ms is not None
                 else "ok", "waiting": "connecting"}.get(row.status, row.status)
    fresh = row.status == "ok"
    return [
        row.name, reachable,
        (r.get("docker_version") or "-") if fresh else "-",
        r.get("state", "-") if fresh else "-",
        (r.get("health") or "-") if fresh else "-",
        (r.get("opencode_version") or "-") if fresh else "-",
        format_duration(r.get("uptime_seconds")) if fresh else "-",
        f"{r['cpu_percent']}%" if fresh and r.get("cpu_percent") is not None else "-",
        (f"{used} / {limit}" if limit else used) if fresh else "-",
        restarts if fresh else "-",
        ("yes: " + ", ".join(d["key"] for d in r["drift"]) if r.get("drift") else "no")
        if fresh else "-",
        row.error.message if row.error is not None else "",
    ]


def row_json(row: Any) -> dict[str, Any]:
    report = {k: v for k, v in (row.report or {}).items() if not k.startswith("_")}
    entry: dict[str, Any] = {"host": row.name, "ok": row.status == "ok",
                             "reachable": row.status not in ("unreachable", "not answering"),
                             "round_trip_ms": row.round_trip_ms}
    if row.status == "ok":
        entry.update(report)
    else:
        entry["status"] = row.status
        entry["error"] = {"message": row.error.message if row.error else row.status,
                          "hint": row.error.hint if row.error else None}
    return entry


def rich_table(rows: list[Any], interval: float, color: bool):
    from rich.table import Table
    from rich.text import Text

    title = (f"occ status --watch: {len(rows)} hosts, every {interval:g} s "
             f"({time.strftime('%H:%M:%S')}); q or Ctrl-C ends")
    table = Table(title=title, header_style="bold", expand=True)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = None
        if color:
            style = "red" if row.status != "ok" else ("yellow" if row.failing else "green")
        table.add_row(*[Text(cell) for cell in cells(row)], style=style)
    return table


@contextlib.contextmanager
def keys() -> Iterator[Any]:
    """The terminal in cbreak mode (keys arrive one by one, no echo); restored after."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def quit_pressed(fd: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for a key; True for ``q``."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready and os.read(fd, 32).lower().startswith(b"q"):
            return True


def watch(watcher: Any, *, interval: float, count: int | None, as_json: bool,
          printer: Printer, color: bool) -> None:
    """Refresh until ``q``/Ctrl-C (or ``count`` refreshes)."""
    terminal = sys.stdout.isatty() and sys.stdin.isatty() and not as_json
    done = 0
    if not terminal:
        try:
            while count is None or done < count:
                started = time.monotonic()
                rows = watcher.refresh()
                done += 1
                if as_json:
                    printer.raw_json_line([row_json(r) for r in rows])
                else:
                    printer.table(COLUMNS, [cells(r) for r in rows],
                                  title=time.strftime("%H:%M:%S"))
                if count is None or done < count:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
        except KeyboardInterrupt:
            pass
        return
    from rich.console import Console
    from rich.live import Live

    console = Console(no_color=not color)
    try:
        with keys() as fd, Live(console=console, screen=True, auto_refresh=False) as live:
            while count is None or done < count:
                started = time.monotonic()
                live.update(rich_table(watcher.refresh(), interval, color), refresh=True)
                done += 1
                if quit_pressed(fd, max(0.0, interval - (time.monotonic() - started))):
                    break
    except KeyboardInterrupt:
        pass
