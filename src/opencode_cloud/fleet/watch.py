"""``status --watch``: refresh the status of many targets over connections kept open.

Each target gets a session (its Engine, forwarded over SSH and kept for the whole watch)
and one refresh at a time in a thread of its own. A refresh that does not answer within
the timeout is shown as such and the others go on; a target whose refresh failed gets a
new session at the next refresh (its connection is opened anew, with the usual retries).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opencode_cloud.errors import OccError
from opencode_cloud.fleet.runner import classify


@dataclass
class Row:
    """One target's latest refresh."""

    name: str
    report: dict[str, Any] | None = None  # collect_status's report
    error: OccError | None = None
    status: str = "waiting"  # ok | failed | unreachable | not answering | waiting
    round_trip_ms: float | None = None  # one Engine request over the target's connection
    since: float = field(default_factory=time.monotonic)  # when the pending refresh began

    @property
    def failing(self) -> bool:
        if self.status != "ok" or self.report is None:
            return True
        return not (self.report["state"] == "running" and self.report["health"] == "healthy")


class Session:
    """A kept-open target: ``open()`` returns ``(service, close)``."""

    def __init__(self, name: str, open_target: Callable[[], tuple[Any, Callable[[], None]]]):
        self.name = name
        self._open = open_target
        self.service: Any = None
        self._close: Callable[[], None] | None = None

    def ensure(self) -> Any:
        if self.service is None:
            self.service, self._close = self._open()
        return self.service

    def close(self) -> None:
        close, self._close, self.service = self._close, None, None
        if close is not None:
            with contextlib.suppress(Exception):  # a broken connection: closed as far as can be
                close()


class Watcher:
    def __init__(self, sessions: list[Session],
                 collect: Callable[[Any, dict[str, Any] | None], dict[str, Any]], *,
                 timeout: float) -> None:
        self.sessions = sessions
        self.collect = collect
        self.timeout = timeout
        self.rows = {s.name: Row(s.name) for s in sessions}
        self._busy: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def _refresh_one(self, session: Session) -> None:
        row = self.rows[session.name]
        started = time.perf_counter()
        try:
            service = session.ensure()
            previous = row.report
            report = self.collect(service, previous)
            elapsed = (time.perf_counter() - started) * 1000
            with self._lock:
                self.rows[session.name] = Row(session.name, report, None, "ok",
                                              round(elapsed, 1))
        except BaseException as exc:  # noqa: BLE001  a failure is shown, the watch goes on
            error = exc if isinstance(exc, OccError) else OccError(
                f"unexpected {type(exc).__name__}: {exc}")
            session.close()  # the next refresh connects anew
            with self._lock:
                self.rows[session.name] = Row(session.name, row.report, error, classify(exc))
        finally:
            with self._lock:
                self._busy.pop(session.name, None)

    def refresh(self) -> list[Row]:
        """One refresh of every target (one still busy with the last is left alone), back
        within ``timeout``; failing targets first, then by name."""
        started = time.monotonic()
        for session in self.sessions:
            with self._lock:
                if session.name in self._busy:
                    continue
                worker = threading.Thread(target=self._refresh_one, args=(session,),
                                          daemon=True, name=f"occ-watch-{session.name}")
                self._busy[session.name] = worker
                self.rows[session.name].since = started
            worker.start()
        for session in self.sessions:
            with self._lock:
                worker = self._busy.get(session.name)
            if worker is not None:
                worker.join(max(0.0, self.timeout - (time.monotonic() - started)))
        with self._lock:
            for name in self._busy:
                row = self.rows[name]
                if row.status == "waiting":  # its first connection is still being made
                    continue
                waited = time.monotonic() - row.since
                self.rows[name] = Row(name, row.report, OccError(
                    f"no answer for {waited:.0f} s"), "not answering", since=row.since)
            rows = list(self.rows.values())
        return sorted(rows, key=lambda r: (not r.failing, r.name))

    def close(self) -> None:
        for session in self.sessions:
            session.close()
