"""The fleet runner with fake work: order, the parallel bound, failures that stay on
their host, the rolling order that halts, and cancelling from the main thread."""

from __future__ import annotations

import threading
import time

import pytest

from opencode_cloud.errors import OccError
from opencode_cloud.fleet.runner import (
    FAILED,
    INTERRUPTED,
    NOT_STARTED,
    OK,
    SKIPPED,
    UNREACHABLE,
    Fleet,
    HostTask,
    rolling,
)
from opencode_cloud.hosts.model import Host, HostConfig
from opencode_cloud.report import Reporter
from opencode_cloud.ssh.errors import Problem, SshError


def hosts(n: int) -> list[Host]:
    return [Host(f"h{i:02d}", HostConfig(f"10.0.0.{i}")) for i in range(1, n + 1)]


def fleet(parallel: int = 10, **kwargs) -> Fleet:
    return Fleet(parallel=parallel, reporter_for=lambda host: Reporter(), **kwargs)


def test_every_host_gets_a_result_in_order_and_at_most_parallel_run_at_once() -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def work(task: HostTask) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return task.host.name.upper()

    results = fleet(parallel=3).run(hosts(10), work)
    assert [r.host for r in results] == [h.name for h in hosts(10)]
    assert [r.value for r in results] == [h.name.upper() for h in hosts(10)]
    assert all(r.status == OK for r in results)
    assert peak == 3


def test_a_slow_or_failing_host_neither_stops_nor_slows_the_others() -> None:
    def work(task: HostTask) -> str:
        if task.host.name == "h01":
            time.sleep(1.0)  # a host spending its retries
            raise SshError("cannot reach 10.0.0.1:22", "check it", problem=Problem.TIMEOUT,
                           host="h01")
        if task.host.name == "h02":
            raise OccError("the container could not start", hint="look")
        if task.host.name == "h03":
            raise RuntimeError("a bug")
        return "fine"

    finished: dict[str, float] = {}
    started = time.monotonic()
    results = fleet(parallel=2, on_finish=lambda r: finished.setdefault(
        r.host, time.monotonic() - started)).run(hosts(6), work)
    by_host = {r.host: r for r in results}
    assert by_host["h01"].status == UNREACHABLE and "cannot reach" in by_host["h01"].reason
    assert by_host["h02"].status == FAILED and by_host["h02"].error.hint == "look"
    assert by_host["h03"].status == FAILED and "unexpected RuntimeError" in by_host["h03"].reason
    assert isinstance(by_host["h03"].unexpected, RuntimeError)
    assert all(by_host[f"h0{i}"].status == OK for i in (4, 5, 6))
    # With two places and h01 holding one for a second, the rest went through the other.
    assert max(finished[f"h0{i}"] for i in (2, 3, 4, 5, 6)) < 0.5


def test_a_rollout_runs_the_canary_alone_then_batches_and_halts_on_a_failure() -> None:
    calls: list[list[str]] = []
    lock = threading.Lock()

    def work(task: HostTask) -> str:
        with lock:
            calls.append([task.host.name])
        if task.host.name == "h04":
            raise OccError("update failed; rolled back")
        return "updated"

    f = fleet(parallel=10)
    results = rolling(f, hosts(9), work, batch=3)
    status = {r.host: r.status for r in results}
    # [h01] alone, then [h02 h03 h04] (h04 fails), then nothing more.
    assert [status[f"h0{i}"] for i in range(1, 10)] == [OK, OK, OK, FAILED] + [SKIPPED] * 5
    assert calls[0] == ["h01"]
    assert {name for (name,) in calls} == {"h01", "h02", "h03", "h04"}


def test_a_failing_canary_leaves_every_other_host_untouched() -> None:
    touched: list[str] = []

    def work(task: HostTask) -> None:
        touched.append(task.host.name)
        raise OccError("the new image did not become healthy")

    results = rolling(fleet(), hosts(5), work, batch=2)
    assert touched == ["h01"]
    assert [r.status for r in results] == [FAILED] + [SKIPPED] * 4


def test_no_canary_goes_straight_to_batches() -> None:
    seen: list[str] = []
    results = rolling(fleet(parallel=1), hosts(3), lambda t: seen.append(t.host.name),
                      batch=3, canary=False)
    assert [r.status for r in results] == [OK] * 3 and sorted(seen) == ["h01", "h02", "h03"]


def test_interrupting_cancels_every_host_closes_their_resources_and_ends_children() -> None:
    closed: list[str] = []
    ended: list[bool] = []
    release = threading.Event()

    class Resource:
        def __init__(self, name: str) -> None:
            self.name = name

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            closed.append(self.name)
            release.set()  # closing the forward is what ends the host's blocked call

    def work(task: HostTask) -> None:
        task.enter(Resource(task.host.name))
        release.wait(10)
        raise OSError("the forward went away")

    starts: list[str] = []

    def on_start(host: Host) -> None:
        starts.append(host.name)
        if len(starts) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third host is being started

    f = fleet(parallel=3, on_start=on_start, cancel_children=lambda: ended.append(True))
    results = f.run(hosts(6), work)
    assert f.interrupted and ended == [True]
    status = {r.host: r.status for r in results}
    assert status["h01"] == status["h02"] == INTERRUPTED
    assert {status[f"h0{i}"] for i in (4, 5, 6)} == {NOT_STARTED}
    assert sorted(closed)[:2] == ["h01", "h02"]


def test_parallel_is_bounded() -> None:
    for bad in (0, 65):
        with pytest.raises(ValueError):
            fleet(parallel=bad)
