"""How the core tells what it is doing and asks what it must ask: one small injected object.

The core (``service``, ``image``, ``engine``, ``ssh``, ``hosts``, ``install``) never prints,
never reads the terminal and never checks for one. Every operation is handed a
:class:`Reporter`, calls it as the work goes on, and returns a result value. The CLI
chooses what the calls become (``output/``): prefixed lines and a spinner for one host, one
row of a live table per host for a fleet, a buffer shown only when a host fails, or
nothing at all. That is what lets one operation run on twenty hosts at once.

Questions go through the same object: :attr:`Reporter.interactive` says whether a person
can answer at all, :meth:`Reporter.confirm` and :meth:`Reporter.secret` ask. The base class
is a complete, silent reporter that answers "no" and has nobody to ask; implementations
override what they render.
"""

from __future__ import annotations


class Reporter:
    """Progress, messages and questions of one operation on one target."""

    #: Can a person answer questions (a terminal on this side)? Decides whether ssh may
    #: prompt for a key's passphrase and whether an install may be offered.
    interactive: bool = False

    # -- what is going on ------------------------------------------------------------------
    def step(self, text: str) -> None:
        """A new phase of the work begins ("Building image …", "Waiting for opencode")."""

    def activity(self, text: str) -> None:
        """What the current phase is doing right now (a build's "Step 3/9"): shown in a
        spinner or a live row, printed only in verbose output."""

    def detail(self, text: str) -> None:
        """A line of the work's own output (build log, probe answer): verbose only."""

    def output(self, text: str) -> None:
        """A line that came from the target (a remote command's output), shown as it is."""

    def progress(self, what: str, done: int, total: int | None) -> None:
        """Bytes done of ``total`` (None: unknown yet) for a transfer called ``what``."""

    def checkpoint(self, name: str) -> None:
        """A step of a container switch is done ("image-ready", "old-stopped", ...; see
        service/switch.py). Nothing to show; the CLI lets tests freeze occ there."""

    # -- messages ----------------------------------------------------------------------------
    def info(self, text: str) -> None:
        """A message for the person."""

    def success(self, text: str) -> None:
        """Something finished well."""

    def notice(self, text: str) -> None:
        """A remark while work goes on (a retry, a wait)."""

    def warn(self, text: str) -> None:
        """Something is wrong but the work goes on."""

    # -- questions ---------------------------------------------------------------------------
    def confirm(self, question: str) -> bool:
        """Ask yes/no; only called when :attr:`interactive`. The silent default is no."""
        return False

    def secret(self, prompt: str) -> str | None:
        """Ask for a secret without echoing it (sudo's password); None: nobody to ask."""
        return None


SILENT = Reporter()

# Where the storage layer's "waiting for another occ (pid N) to finish with FILE" goes: a
# file lock has no operation's reporter at hand, so the CLI sets this once at start-up.
lock_wait_notice = None  # Callable[[str], None] | None
