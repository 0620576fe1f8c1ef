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
    # Each poll is one exec that probes inside the container for up to 5 s.
    assert {tuple(cmd) for cmd, _ in container.execs} == {tuple(health.readiness_argv(5))}
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


# -- the readiness loop, run by a real sh against a stand-in for the image's probe ----------

def run_readiness(tmp_path, answers: list[tuple[int, str]], window: int):
    """Run readiness_argv's loop with ``$0`` a script that gives ``answers`` in turn (the
    last one again and again); (exit status, output, probes made)."""
    import subprocess

    count = tmp_path / "count"
    count.write_text("0")
    cases = "\n".join(f"  {i}) printf '%s\\n' '{out}'; exit {code} ;;"
                      for i, (code, out) in enumerate(answers[:-1]))
    last_code, last_out = answers[-1]
    script = tmp_path / "occ-entrypoint"
    script.write_text(f"""#!/bin/sh
[ "$1" = probe ] && [ "$2" = 1 ] || exit 99
n=$(cat {count}); echo $((n + 1)) > {count}
case $n in
{cases}
  *) printf '%s\\n' '{last_out}'; printf 'occ-watchdog {{"restarts": 0}}\\n'; exit {last_code} ;;
esac
""")
    script.chmod(0o755)
    argv = health.readiness_argv(window)
    argv[3] = str(script)  # $0: the probe's path in the image
    done = subprocess.run(argv, capture_output=True, text=True, timeout=window + 10)
    return done.returncode, done.stdout, int(count.read_text())


def test_the_readiness_loop_probes_until_opencode_answers(tmp_path) -> None:
    code, out, probes = run_readiness(
        tmp_path, [(7, "curl: (7) Failed to connect"), (28, "curl: (28) timed out"),
                   (0, '{"healthy": true, "version": "1.18.33"}')], window=5)
    assert (code, probes) == (0, 3)
    verdict = health.parse_probe(out, code == 0)
    assert verdict.healthy and verdict.version == "1.18.33" and verdict.watchdog is not None


def test_the_readiness_loop_ends_with_the_last_failure_when_the_window_closes(tmp_path):
    code, out, probes = run_readiness(tmp_path, [(7, "curl: (7) Failed to connect")],
                                      window=1)
    assert code == 1 and 1 <= probes <= 8  # a probe every 0.2 s for at most a second
    assert health.parse_probe(out, False).detail == "curl: (7) Failed to connect"
