"""Render everything a person sees. Host prefixes ``[name] `` are added here and only here.

Human lines go to stdout (warnings and errors to stderr); ``-q`` silences all but errors.
JSON output carries ``"host"`` instead of a prefix. Rich is imported only for tables,
spinners and progress bars, so plain commands stay fast.

Every line is sanitised here (output/sanitize.py) before it reaches the terminal, because
occ's own messages quote text from elsewhere too (a build's or install's last lines, a
host's errors): only colours pass, and only those of remote output (:meth:`raw`) and of
occ's tables, and only when colours are on. ``--json`` carries the raw text, which
``json.dumps`` escapes itself.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from opencode_cloud.errors import OccError
from opencode_cloud.output.sanitize import sanitize


class Printer:
    # One lock for every printer: lines of hosts worked on at once never tear.
    _write_lock = threading.Lock()

    def __init__(self, *, quiet: bool = False, color: bool = True, host: str | None = None):
        self.quiet = quiet
        self.color = color and sys.stdout.isatty()
        self.err_color = color and sys.stderr.isatty()
        self.host = host  # None = this machine: no prefix
        # Called before any line is written: a reporter takes its spinner down here.
        self.before_line: Callable[[], None] | None = None

    # -- building blocks -------------------------------------------------
    def _style(self, text: str, colored: bool, **style: Any) -> str:
        return click.style(text, **style) if colored and style else text

    def prefix(self, colored: bool) -> str:
        if self.host is None:
            return ""
        return self._style(f"[{self.host}]", colored, fg="cyan", bold=True) + " "

    def _emit(self, text: str, err: bool, *, sgr: bool = False, **style: Any) -> None:
        """Write ``text``'s lines, each with the host prefix. ``sgr``: the text's own colour
        sequences may pass (when colours are on); any other control character is escaped."""
        if self.before_line is not None:
            self.before_line()
        colored = self.err_color if err else self.color
        pre = self.prefix(colored)
        # Sanitised first: then "\n" is the only line break left, and the prefix's own
        # styling is added after, untouched by the text (whose colours end with a reset).
        text = sanitize(text, keep_sgr=sgr and colored)
        lines = [pre + self._style(piece, colored, **style) for piece in text.splitlines() or [""]]
        with self._write_lock:
            click.echo("\n".join(lines), err=err)

    # -- what commands call ------------------------------------------------
    def line(self, text: str = "", **style: Any) -> None:
        if not self.quiet:
            self._emit(text, err=False, **style)

    def success(self, text: str) -> None:
        self.line(text, fg="green")

    def detail(self, text: str) -> None:
        self.line(text, dim=True)

    def warn(self, text: str) -> None:
        if not self.quiet:
            self._emit(f"Warning: {text}", err=True, fg="yellow")

    def notice(self, text: str) -> None:
        """A remark while work goes on (a retry, a wait): stderr, so stdout stays clean."""
        if not self.quiet:
            self._emit(text, err=True, fg="yellow")

    def error(self, err: OccError | str, hint: str | None = None) -> None:
        message = err.message if isinstance(err, OccError) else err
        hint = err.hint if isinstance(err, OccError) else hint
        self._emit(f"Error: {message}", err=True, fg="red", bold=True)
        if hint:
            self._emit(f"Hint: {hint}", err=True)

    def confirm(self, question: str, default: bool = False) -> bool:
        """Ask a yes/no question on the terminal (callers check there is one first)."""
        question = sanitize(question, keep_sgr=False)
        return click.confirm(self.prefix(self.color) + question, default=default)

    def raw(self, text: str) -> None:
        """A line from elsewhere (container logs, remote command output), prefixed for remotes.
        Its colours pass only when colours are on; every other control character is shown
        escaped (see output/sanitize.py)."""
        self._emit(text, err=False, sgr=True)

    def json(self, payload: Any) -> None:
        if self.before_line is not None:
            self.before_line()
        if isinstance(payload, dict) and self.host is not None:
            payload = {"host": self.host, **payload}
        click.echo(json.dumps(payload, indent=2, default=str))

    def raw_json_line(self, payload: Any) -> None:
        """One JSON document on one line (a stream of them, for monitoring scripts)."""
        with self._write_lock:
            click.echo(json.dumps(payload, default=str))

    def table(self, columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
        if self.quiet:
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold", box=None, pad_edge=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            # Cells may hold remote text (a version, an error): plain Text, sanitised, so it
            # is neither Rich markup nor an escape sequence, and the columns line up.
            table.add_row(*(Text(sanitize(cell or "", keep_sgr=False)) for cell in row))
        # Into a pipe or file, rows are not wrapped at 80 columns: scripts read them whole.
        width = None if sys.stdout.isatty() else 250
        console = Console(no_color=not self.color, highlight=False, soft_wrap=True, width=width)
        with console.capture() as captured:
            console.print(table)
        text = "\n".join(line.rstrip() for line in captured.get().rstrip("\n").splitlines())
        self._emit(text, err=False, sgr=True)  # Rich's own styling (bold header)

    def key_values(self, pairs: list[tuple[str, str]]) -> None:
        """Aligned ``key: value`` lines, for single-object views (status, show)."""
        width = max((len(key) for key, _ in pairs), default=0)
        for key, value in pairs:
            self.line(f"{key + ':':<{width + 1}} {value}")
