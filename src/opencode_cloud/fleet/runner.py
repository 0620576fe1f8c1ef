"""Run the same operation on many hosts, at most ``parallel`` at a time, and collect one
result per host.

Each host gets its own thread, reporter, connection and result, so a host that fails, is
unreachable or spends its connection retries never stops or slows the others: the others
keep the free places. At most ``parallel`` hosts are being worked on at once, so at most
that many SSH connections are being opened at once (also through a shared jump host).

Interrupting (Ctrl-C, SIGTERM in the thread that called :meth:`Fleet.run`) cancels every
host: the resources each task registered (its forwards) are closed, every ssh process
occ started for a command is ended (only kept-open masters stay), hosts at work are
recorded as ``interrupted`` and those not begun as ``not started``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opencode_cloud.errors import OccError
from opencode_cloud.hosts.model import Host
from opencode_cloud.report import Reporter

T = TypeVar("T")

OK, FAILED, UNREACHABLE, SKIPPED = "ok", "failed", "unreachable", "skipped"
INTERRUPTED, NOT_STARTED = "interrupted", "not started"
MAX_PARALLEL = 64
CANCEL_GRACE = 5.0  # seconds the runner waits for cancelled hosts to let go


@dataclass
class HostResult(Generic[T]):
    host: str
    status: str  # OK | FAILED | UNREACHABLE | SKIPPED | INTERRUPTED | NOT_STARTED
    value: T | None = None
    error: OccError | None = None
    seconds: float = 0.0
    unexpected: BaseException | None = None  # a bug: its traceback is shown with -vv

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def reason(self) -> str:
        if self.error is not None:
            return self.error.message
        return {SKIPPED: "not touched: the rollout halted", NOT_STARTED: "not started",
                INTERRUPTED: "interrupted"}.get(self.status, "")


@dataclass
class HostTask:
    """What the operation of one host gets: its host, its reporter, and a place to register
    what must be closed when the host is done or the run is cancelled."""

    host: Host
    reporter: Reporter
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, manager: contextlib.AbstractContextManager[Any]) -> Any:
        """Enter ``manager`` (a RemoteEngine, …) and exit it when the host is done."""
        with self._lock:
            if self._closed:
                raise Cancelled()
        return self._stack.enter_context(manager)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            self._stack.close()


class Cancelled(Exception):
    """The run was cancelled before this host's work could begin or go on."""


def classify(exc: BaseException) -> str:
    from opencode_cloud.ssh.errors import SshError

    if isinstance(exc, SshError) and exc.retryable:
        return UNREACHABLE
    return FAILED


def _as_error(exc: BaseException) -> OccError:
    if isinstance(exc, OccError):
        return exc
    return OccError(f"unexpected {type(exc).__name__}: {exc}",
                    hint="Run again with -vv to see the traceback, and please report it.")


class Fleet:
    """Runs one operation per host. ``reporter_for(host)`` makes each host's reporter;
    ``on_start``/``on_finish`` tell the renderer (a live view) what happens."""

    def __init__(self, *, parallel: int, reporter_for: Callable[[Host], Reporter],
                 on_start: Callable[[Host], None] | None = None,
                 on_finish: Callable[[HostResult[Any]], None] | None = None,
                 cancel_children: Callable[[], None] | None = None) -> None:
        if not 1 <= parallel <= MAX_PARALLEL:
            raise ValueError(f"parallel must be 1 to {MAX_PARALLEL}")
        self.parallel = parallel
        self.reporter_for = reporter_for
        self.on_start = on_start or (lambda host: None)
        self.on_finish = on_finish or (lambda result: None)
        self.cancel_children = cancel_children
        self.interrupted = False

    def run(self, hosts: Iterable[Host], work: Callable[[HostTask], T]) -> list[HostResult[T]]:
        """``work(task)`` for every host; results in the order of ``hosts``.

        Raises nothing for a host's failure. If the calling thread is interrupted
        (KeyboardInterrupt, SystemExit), everything is cancelled, ``interrupted`` is set
        and the partial results are returned; the caller decides the exit status.
        """
        hosts = list(hosts)
        results: dict[str, HostResult[T]] = {}
        tasks: dict[str, HostTask] = {}
        pending = list(reversed(hosts))
        lock = threading.Lock()
        finished = threading.Event()
        running = 0

        def body(host: Host) -> None:
            nonlocal running
            task = tasks[host.name]
            started = time.monotonic()
            try:
                value = work(task)
                result = HostResult(host.name, OK, value=value)
            except Cancelled:
                result = HostResult(host.name, INTERRUPTED)
            except BaseException as exc:  # noqa: BLE001  every failure becomes a result
                result = HostResult(host.name, classify(exc), error=_as_error(exc),
                                    unexpected=None if isinstance(exc, OccError) else exc)
            finally:
                task.close()
            result.seconds = time.monotonic() - started
            with lock:
                if self.interrupted:
                    return  # the main thread has recorded this host already
                results[host.name] = result
                running -= 1
            self.on_finish(result)
            launch()

        def launch() -> None:
            nonlocal running
            while True:
                with lock:
                    if self.interrupted or running >= self.parallel or not pending:
                        if not pending and running == 0:
                            finished.set()
                        return
                    host = pending.pop()
                    running += 1
                    tasks[host.name] = HostTask(host, self.reporter_for(host))
                self.on_start(host)
                threading.Thread(target=body, args=(host,), daemon=True,
                                 name=f"occ-{host.name}").start()

        if not hosts:
            return []
        try:
            launch()
            while not finished.wait(0.1):
                pass
        except BaseException:
            self._cancel(hosts, results, tasks, lock)
        return [results[host.name] for host in hosts]

    def _cancel(self, hosts: list[Host], results: dict[str, HostResult[Any]],
                tasks: dict[str, HostTask], lock: threading.Lock) -> None:
        with lock:
            self.interrupted = True
            for host in hosts:
                if host.name not in results:
                    status = INTERRUPTED if host.name in tasks else NOT_STARTED
                    results[host.name] = HostResult(host.name, status)
            busy = [task for name, task in tasks.items() if results[name].status == INTERRUPTED]
        # Close each host's resources (its forwards), then end the ssh processes its
        # thread may still wait for; the threads are daemons and go with the process.
        for task in busy:
            task.close()
        if self.cancel_children is not None:
            self.cancel_children()


def batches(items: list[T], size: int) -> list[list[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def rolling(fleet: Fleet, hosts: list[Host], work: Callable[[HostTask], T], *, batch: int,
            canary: bool = True) -> list[HostResult[T]]:
    """A rollout: the first host alone (the canary), then the rest ``batch`` at a time.
    A failure halts it: the hosts not yet touched are ``skipped`` and keep what they run."""
    order = ([hosts[:1]] if canary and hosts else []) + batches(hosts[1:] if canary else hosts,
                                                             batch)
    results: list[HostResult[T]] = []
    for group in order:
        if not group:
            continue
        if fleet.interrupted or any(not r.ok for r in results):
            status = NOT_STARTED if fleet.interrupted else SKIPPED
            results += [HostResult(host.name, status) for host in group]
            continue
        results += fleet.run(group, work)
    return results
