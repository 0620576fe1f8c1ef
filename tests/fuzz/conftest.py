"""The fuzz tests' figures (documents tried, rejected, accepted) at the end of the run."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.fuzz import fuzz_support

    if fuzz_support.TALLY:
        terminalreporter.section("fuzzing (hypothesis)")
        for line in fuzz_support.summary_lines():
            terminalreporter.write_line(line)
