"""What reaches the terminal from elsewhere: Printer.raw (container logs, install output),
the reporters that use it, errors, tables and the fleet view, in a (fake) terminal and not.

The check the issue asks of ``occ logs`` (a log with ``\\x1b]0;pwned\\x07`` and
``\\x1b[2J`` shows both escaped, coloured text stays coloured in a terminal) is made here at
the one place ``occ logs`` prints through: ``Printer.raw``.
"""

from __future__ import annotations

import io
import json
import re
import sys

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencode_cloud.output.console import ConsoleReporter
from opencode_cloud.output.fleet import FleetView, HostReporter
from opencode_cloud.output.printer import Printer

pytestmark = pytest.mark.unit

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
RED = "\x1b[31mred text\x1b[0m"
SGR = re.compile(r"\x1b\[[0-9;:]*m")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as the real one does."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def streams(monkeypatch):
    """Replace stdout and stderr; ``streams(tty)`` returns (stdout, stderr)."""

    def make(tty: bool):
        out, err = Terminal(tty), Terminal(tty)
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        return out, err

    return make


def log_lines(printer: Printer) -> None:
    """What ``occ logs`` does with each line of the container's output."""
    for line in (f"before {TITLE} after", f"{CLEAR}cleared", RED):
        printer.raw(line)


def test_logs_in_a_terminal_escape_title_and_clear_and_keep_colours(streams):
    out, _ = streams(True)
    log_lines(Printer(color=True))
    assert out.getvalue().splitlines() == [
        r"before \x1b]0;pwned\x07 after",
        r"\x1b[2Jcleared",
        "\x1b[31mred text\x1b[0m",
    ]


def test_logs_into_a_pipe_are_plain_text(streams):
    out, _ = streams(False)
    log_lines(Printer(color=True))  # colours wanted, but not a terminal
    assert out.getvalue().splitlines() == [
        r"before \x1b]0;pwned\x07 after",
        r"\x1b[2Jcleared",
        "red text",
    ]
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()


def test_logs_in_a_terminal_with_no_color_are_plain_text(streams):
    out, _ = streams(True)
    log_lines(Printer(color=False))  # --no-color or NO_COLOR
    assert out.getvalue().splitlines() == [
        r"before \x1b]0;pwned\x07 after",
        r"\x1b[2Jcleared",
        "red text",
    ]


def test_the_host_prefix_keeps_its_own_style(streams):
    out, _ = streams(True)
    printer = Printer(color=True, host="h1")
    prefix = click.style("[h1]", fg="cyan", bold=True) + " "
    printer.raw("\x1b[41;4mbackground left on")  # never reset by the container
    printer.raw("\x1b[0m\x1b[8mnext")
    printer.raw(f"two\rlines\nin one {TITLE}")
    lines = out.getvalue().splitlines()
    assert lines == [
        prefix + "\x1b[41;4mbackground left on\x1b[0m",  # reset before the next prefix
        prefix + "\x1b[0m" + r"\x1b[8mnext" + "\x1b[0m",  # concealing is not a colour
        prefix + r"two\rlines",
        prefix + r"in one \x1b]0;pwned\x07",
    ]


def test_the_host_prefix_without_a_terminal(streams):
    out, _ = streams(False)
    printer = Printer(color=True, host="h1")
    printer.raw(f"\x1b[32mok\x1b[0m {TITLE}")
    assert out.getvalue() == "[h1] ok \\x1b]0;pwned\\x07\n"


def test_json_carries_the_raw_text(streams):
    out, _ = streams(True)
    Printer(color=True, host="h1").json({"lines": [TITLE, CLEAR, RED]})
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text  # json.dumps escaped them itself
    assert json.loads(text) == {"host": "h1", "lines": [TITLE, CLEAR, RED]}


def test_errors_and_warnings_quoting_remote_text_are_sanitised(streams):
    _, err = streams(True)
    printer = Printer(color=True, host="h1")
    printer.error(f"the image build failed: {TITLE}\nstep 3 {CLEAR}", hint=f"see {RED}")
    printer.warn(f"odd answer {CLEAR}")
    text = err.getvalue()
    assert TITLE not in text and CLEAR not in text and "\x07" not in text
    assert r"\x1b]0;pwned\x07" in text and r"\x1b[2J" in text
    # occ's own styling stays; the quoted colours of a message do not pass
    assert click.style("Error: ", fg="red", bold=True)[:-len("\x1b[0m")] in text
    assert "\x1b[31mred text" not in text and "see red text" in text


def test_a_table_cell_is_neither_markup_nor_an_escape(streams):
    out, _ = streams(True)
    Printer(color=True).table(["HOST", "VERSION"], [["h1", f"[bold]1.2{CLEAR}"], ["h2", ""]])
    text = out.getvalue()
    assert r"[bold]1.2\x1b[2J" in text
    assert CLEAR not in text
    assert SGR.sub("", text).count("\x1b") == 0  # only the header's own styling


def test_install_output_goes_through_the_same_sanitiser(streams):
    out, _ = streams(True)
    reporter = ConsoleReporter(Printer(color=True, host="h4"))
    reporter.output(f"Setting up docker.io {TITLE}")  # what run_plan does with each line
    assert out.getvalue() == (click.style("[h4]", fg="cyan", bold=True)
                              + r" Setting up docker.io \x1b]0;pwned\x07" + "\n")


def test_fleet_lines_go_through_the_same_sanitiser(streams):
    out, _ = streams(False)
    reporter = HostReporter(Printer(color=True, host="h2"), stream=True)
    reporter.output(f"{CLEAR}log line")
    assert out.getvalue() == "[h2] \\x1b[2Jlog line\n"


def test_the_fleet_view_shows_a_log_line_escaped():
    from rich.console import Console

    reporter = HostReporter(Printer(host="h1"), stream=False)
    reporter.output(f"{TITLE}{CLEAR}[red]line")
    view = FleetView({"h1": reporter}, live=False, color=True)
    view.host_started(type("Host", (), {"name": "h1"})())
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    console.print(view)
    text = console.file.getvalue()
    assert r"\x1b]0;pwned\x07\x1b[2J[red]line" in text
    assert SGR.sub("", text).count("\x1b") == 0


def test_the_spinner_label_is_plain_and_sanitised(monkeypatch):
    from rich.text import Text

    reporter = ConsoleReporter(Printer(host="h1"))
    label = reporter._label(f"pulling {TITLE} [bold]x")
    assert isinstance(label, Text)  # not markup: "[h1]" and "[bold]" stay as they are
    assert label.plain == r"[h1] pulling \x1b]0;pwned\x07 [bold]x"


# Any text written through raw: only SGR (in a terminal) and safe characters reach the
# stream, and every line starts with the host's prefix, styled as occ styles it.
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.sampled_from(list("ab \t\n\r\x1b[]0;18m2J\x07\x9b\x85\u2028\\"))),
       tty=st.booleans())
def test_anything_through_raw_is_safe(streams, text, tty):
    out, _ = streams(tty)
    Printer(color=True, host="h1").raw(text)
    written = out.getvalue()
    prefix = click.style("[h1]", fg="cyan", bold=True) + " " if tty else "[h1] "
    for line in written.split("\n")[:-1]:
        assert line.startswith(prefix)
        rest = line[len(prefix):]
        if tty:
            rest = SGR.sub("", rest)
        assert "\x1b" not in rest and not CONTROL.search(rest)
    assert written.endswith("\n")
