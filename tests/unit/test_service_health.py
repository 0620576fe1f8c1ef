"""Health verdicts: the in-container probe, Docker's HEALTHCHECK and the readiness wait."""

from __future__ import annotations

import pytest

from opencode_cloud.service import health
from opencode_cloud.service.context import ServiceContext
from tests.unit.fake_docker import FakeClient, FakeClock, RecordingReporter


@pytest.fixture
def container(client: FakeClient, svc: ServiceContext):
    return client.containers.add(svc.names.container, client.images.make("img:1"))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(health, "time", fake)
    return fake


@pytest.mark.parametrize(("answer", "verdict"), [
    ((0, b'{"healthy": true, "version": "1.18.33"}'),
     health.Health(True, "1.18.33", '{"healthy": true, "version": "1.18.33"}')),
    ((0, b'{"healthy": false}\n'), health.Health(False, None, '{"healthy": false}')),
    ((7, b"curl: (7) Failed to connect\n"), health.Health(False, detail="curl: (7) Failed to "
                                                                         "connect")),
    ((3, None), health.Health(False, detail="probe exit 3")),
    ((0, b"<html>nope</html>"), health.Health(False, detail="unexpected answer: "
                                                            "<html>nope</html>")),
    ((0, b"\xff\xfe"), health.Health(False, detail="unexpected answer: \ufffd\ufffd")),
])
def test_probe_reads_the_exit_status_and_json(container, answer, verdict) -> None:
    container.exec_answers = [answer]
    assert health.probe(container, 2) == verdict
    assert container.execs == [(["/usr/local/bin/occ-entrypoint", "probe", "2"], "opencoder")]


def test_probe_of_a_container_that_went_away(container) -> None:
    container.exec_answers = [RuntimeError("container abc is not running")]
    assert health.probe(container) == health.Health(False, detail="container abc is not running")


def test_a_long_unexpected_answer_is_cut(container) -> None:
    container.exec_answers = [(0, b"x" * 1000)]
    assert health.probe(container).detail == "unexpected answer: " + "x" * 200


def state(status: str | None, *log: dict) -> dict:
    return {"State": {"Health": {"Status": status, "Log": list(log)}}}


@pytest.mark.parametrize(("attrs", "verdict"), [
    ({}, None),
    ({"State": {"Running": True}}, None),
    (state("starting", {"ExitCode": 0, "Output": "{}"}), None),
    (state("healthy"), None),  # a verdict without a log entry: none yet
    (state("healthy", {"ExitCode": 1, "Output": "old"},
           {"ExitCode": 0, "Output": '{"healthy": true, "version": "9.9.9"}'}),
     health.Health(True, "9.9.9", '{"healthy": true, "version": "9.9.9"}')),
    (state("unhealthy", {"ExitCode": 1, "Output": " refused \n"}),
     health.Health(False, detail="refused")),
    (state("unhealthy", {"ExitCode": 1, "Output": None}), health.Health(False,
                                                                        detail="unhealthy")),
    (state("healthy", {"ExitCode": 2, "Output": "flaky"}), health.Health(False, detail="flaky")),
    (state("healthy", {"ExitCode": 0, "Output": "not json"}), None),
])
def test_docker_health(attrs: dict, verdict) -> None:
    assert health.docker_health(attrs) == verdict


def test_wait_returns_once_opencode_answers(svc: ServiceContext, container, clock: FakeClock,
                                            reporter: RecordingReporter) -> None:
    container.exec_answers = [(7, b"refused"), (0, b'{"healthy": false}'),
                              (0, b'{"healthy": true, "version": "1.0.0"}')]
    verdict = health.wait_until_healthy(svc, container, timeout=30)
    assert verdict.healthy and verdict.version == "1.0.0"
    assert clock.sleeps == [0.25, 0.25]
    assert reporter.of("step") == ["Waiting for opencode to answer"]
    # Each poll asks with the short readiness timeout.
    assert {tuple(cmd) for cmd, _ in container.execs} == {
        ("/usr/local/bin/occ-entrypoint", "probe", "1")}
    assert len(container.execs) == 3


def test_wait_gives_up_after_the_timeout_with_the_last_logs(svc: ServiceContext, container,
                                                             clock: FakeClock) -> None:
    container.exec_answers = [(7, b"curl: connection refused")]
    container.log_bytes = b"line one\nline two\n"
    with pytest.raises(health.NotHealthy) as failure:
        health.wait_until_healthy(svc, container, timeout=5)
    assert failure.value.message == ("opencode did not answer within 5s "
                                     "(curl: connection refused)")
    assert failure.value.hint == "Its last log lines:\nline one\nline two"
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert container.log_calls == [{"tail": 20}]


def test_wait_stops_when_the_container_exits(svc: ServiceContext, container,
                                             clock: FakeClock) -> None:
    container.status, container.exit_code = "exited", 137
    container.log_bytes = b""
    with pytest.raises(health.NotHealthy) as failure:
        health.wait_until_healthy(svc, container, timeout=60)
    assert failure.value.message == ("the container stopped (exit code 137) before opencode "
                                     "answered")
    assert failure.value.hint == "Its last log lines:\n(no output)"
    assert container.execs == [] and clock.sleeps == []


def test_wait_stops_when_the_container_keeps_exiting(svc: ServiceContext, container,
                                                    clock: FakeClock) -> None:
    """A restart loop counts as running for Docker; a few restarts in, occ gives up."""
    container.status, container.exit_code = "restarting", 3
    container.exec_answers = [(1, b"Error: container is restarting")]
    container.log_bytes = b"broken\n"

    def restarted() -> None:
        container.restart_count += 1

    container.reload = restarted
    with pytest.raises(health.NotHealthy) as failure:
        health.wait_until_healthy(svc, container, timeout=60)
    assert failure.value.message == ("the container keeps exiting (exit code 3) before "
                                     "opencode answered")
    assert failure.value.hint == "Its last log lines:\nbroken"
    assert len(container.execs) == health.RESTARTS_GIVING_UP


def test_last_logs_when_the_engine_cannot_give_them(container) -> None:
    container.log_bytes = ConnectionError("gone")
    assert health.last_logs(container) == "(logs unavailable: gone)"
