"""The reporter of a command acting on one target: lines on the terminal, a spinner for the
current step and a bar for transfers (Rich, on stderr, only in a terminal).

Every line goes through the :class:`~opencode_cloud.output.printer.Printer`, which adds the
``[host]`` prefix; the spinner or bar is taken down before a line is printed, so the two
never tear into each other. Without a terminal a step is printed once as a plain line.
"""

from __future__ import annotations

from typing import Any

from opencode_cloud.output.printer import Printer
from opencode_cloud.output.sanitize import sanitize
from opencode_cloud.report import Reporter


class ConsoleReporter(Reporter):
    def __init__(self, printer: Printer, *, verbose: int = 0, interactive: bool = False) -> None:
        self.printer = printer
        self.verbose = verbose
        self.interactive = interactive
        self._console: Any = None
        self._status: Any = None  # a Rich Status while a step runs
        self._bar: Any = None  # (Progress, task id) while a transfer runs
        printer.before_line = self.stop_live

    def checkpoint(self, name: str) -> None:
        # For tests of cut-off operations: OCC_TEST_STOP_AT=old-stopped freezes this
        # process (SIGSTOP) right after that step, so a test can cut the connection or
        # kill occ exactly there. Unset, it costs one dictionary lookup.
        import os

        if os.environ.get("OCC_TEST_STOP_AT") == name:
            import signal

            os.kill(os.getpid(), signal.SIGSTOP)

    # -- live parts ---------------------------------------------------------------------------
    def _live_console(self):
        """A Rich console on stderr if it is a terminal (and output is wanted), else None."""
        if self.printer.quiet:
            return None
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, no_color=not self.printer.err_color)
        return self._console if self._console.is_terminal else None

    def stop_live(self) -> None:
        if self._status is not None:
            status, self._status = self._status, None
            status.stop()
        if self._bar is not None:
            (progress, _), self._bar = self._bar, None
            progress.stop()

    def _label(self, text: str) -> Any:
        """A spinner's text: plain (no Rich markup, which would eat the ``[host]`` prefix and
        interpret remote text) and sanitised, like every line."""
        from rich.text import Text

        return Text(self.printer.prefix(False) + sanitize(text, keep_sgr=False))

    def _spin(self, text: str) -> bool:
        console = self._live_console()
        if console is None:
            return False
        label = self._label(text)
        if self._status is None:
            self.stop_live()
            self._status = console.status(label)
            self._status.start()
        else:
            self._status.update(label)
        return True

    # -- Reporter -------------------------------------------------------------------------------
    def step(self, text: str) -> None:
        if not self._spin(text):
            self.printer.line(text)

    def activity(self, text: str) -> None:
        if self._status is not None:
            self._status.update(self._label(text))
        if self.verbose:
            self.printer.detail(text)

    def detail(self, text: str) -> None:
        if self.verbose:
            self.printer.detail(text)

    def output(self, text: str) -> None:
        self.printer.raw(text)

    def progress(self, what: str, done: int, total: int | None) -> None:
        console = self._live_console()
        if console is None:
            return
        if self._bar is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self.stop_live()
            # TextColumn formats its text with str.format: braces are doubled.
            label = (self.printer.prefix(False) + sanitize(what, keep_sgr=False))
            columns = (TextColumn(label.replace("{", "{{").replace("}", "}}"), markup=False),
                       BarColumn(), DownloadColumn())
            progress = Progress(*columns, console=console, transient=True)
            progress.start()
            self._bar = (progress, progress.add_task(what, total=None))
        progress, task = self._bar
        progress.update(task, completed=done, total=total or None)

    def info(self, text: str) -> None:
        self.printer.line(text)

    def success(self, text: str) -> None:
        self.printer.success(text)

    def notice(self, text: str) -> None:
        self.printer.notice(text)

    def warn(self, text: str) -> None:
        self.printer.warn(text)

    def confirm(self, question: str) -> bool:
        self.stop_live()
        return self.printer.confirm(question)

    def secret(self, prompt: str) -> str | None:
        if not self.interactive:
            return None
        import getpass

        self.stop_live()
        # getpass writes the prompt to the terminal and reads the answer with echo off.
        prompt = sanitize(prompt, keep_sgr=False)  # sudo's prompt comes from the host
        return getpass.getpass(self.printer.prefix(self.printer.err_color) + prompt)
