"""Errors are values: a message for the person and a hint of what to do next.

The core raises them; only the CLI layer renders them (one line on stderr, exit 1).
"""

from __future__ import annotations


class OccError(Exception):
    """A failure a person can act on. Rendered without a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(OccError):
    """A configuration or data file is missing, corrupt or holds an invalid value."""


class NotRunningError(OccError):
    """An operation needs a container that is not there or not running."""
