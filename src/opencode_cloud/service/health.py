"""Health of the running service, probed from inside its container.

Probing through the Engine (an exec of the image's own probe) tests the service where it
runs, so it works the same for a remote target as for this machine, and never depends on
which address the port is published on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from opencode_cloud.engine.exec_stream import run_collected
from opencode_cloud.errors import OccError
from opencode_cloud.service.context import ServiceContext

PROBE = ["/usr/local/bin/occ-entrypoint", "probe"]
# While opencode starts, a request can be accepted and then left unanswered: poll with a
# short timeout so readiness is seen within a second of it.
READINESS_PROBE_SECONDS = 1
# While waiting for a start, one exec probes again and again inside the container for up
# to this long: an exec costs the host a runc start and, over SSH, several round trips,
# and twenty hosts starting at once should not spend their CPU on being watched.
READINESS_WINDOW_SECONDS = 5
READINESS_RETRY = "0.2"  # seconds between two probes inside that exec
STATUS_PROBE_SECONDS = 4
RESTARTS_GIVING_UP = 3  # restarts seen while waiting that mean a container cannot start


@dataclass(frozen=True)
class Health:
    healthy: bool
    version: str | None = None
    detail: str = ""
    watchdog: dict | None = None  # the probe's "occ-watchdog {...}" line, see entrypoint.sh


WATCHDOG_PREFIX = "occ-watchdog "


def split_probe_output(text: str) -> tuple[str, dict | None]:
    """The probe prints opencode's own answer, then a line of the watchdog's figures
    (restarts, memory, CPU from the cgroup files): (opencode's answer, those figures)."""
    answer, figures = [], None
    for line in text.splitlines():
        if line.startswith(WATCHDOG_PREFIX):
            try:
                figures = json.loads(line[len(WATCHDOG_PREFIX):])
            except ValueError:
                figures = None
        elif line.strip():
            answer.append(line)
    return "\n".join(answer).strip(), figures if isinstance(figures, dict) else None


def parse_probe(output: str, ok: bool) -> Health | None:
    """Health from the probe's output; None when opencode's answer is not its JSON."""
    text, figures = split_probe_output(output)
    if not ok:
        return Health(False, detail=text or "unhealthy", watchdog=figures)
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    return Health(bool(answer.get("healthy")), answer.get("version"), text, figures)


def readiness_argv(window: int) -> list[str]:
    """One exec that runs the probe until opencode answers or ``window`` seconds pass,
    and prints the last probe's output (the answer, or why it failed) with its verdict."""
    loop = ('end=$(($(date +%s) + $1)); '
            'while :; do '
            f'out=$("$0" probe {READINESS_PROBE_SECONDS}) && {{ printf "%s\\n" "$out"; exit 0; }}; '
            '[ "$(date +%s)" -lt "$end" ] || { printf "%s\\n" "$out"; exit 1; }; '
            f'sleep {READINESS_RETRY}; '
            'done')
    return ["sh", "-c", loop, PROBE[0], str(window)]


def probe(container, max_seconds: int = STATUS_PROBE_SECONDS,
          argv: list[str] | None = None) -> Health:
    try:
        code, output = run_collected(container.client.api, container.id,
                                     argv or [*PROBE, str(max_seconds)], user="opencoder")
    except Exception as exc:  # the container stopped between our checks
        return Health(False, detail=str(exc))
    text = (output or b"").decode(errors="replace").strip()
    if code != 0 and not split_probe_output(text)[0]:
        return Health(False, detail=f"probe exit {code}")
    health = parse_probe(text, code == 0)
    if health is None:
        return Health(False, detail=f"unexpected answer: {text[:200]}")
    return health


def docker_health(attrs: dict) -> Health | None:
    """The verdict of the image's HEALTHCHECK, which runs the same probe every 10 s.

    Reading it costs nothing beyond the container inspect that status makes anyway (one
    round trip less over SSH than an exec). None while Docker has no verdict yet.
    """
    state = (attrs.get("State") or {}).get("Health") or {}
    log = state.get("Log") or []
    if state.get("Status") not in ("healthy", "unhealthy") or not log:
        return None
    last = log[-1]
    output = (last.get("Output") or "").strip()
    if state["Status"] == "unhealthy" and state.get("FailingStreak") == 0:
        # Not a verdict: Docker marks a container unhealthy whenever it stops the checks
        # (a pause, as occ backup makes), and the next check comes an interval later.
        return None
    return parse_probe(output, state["Status"] != "unhealthy" and last.get("ExitCode") == 0)


class NotHealthy(OccError):
    """The service did not become healthy in time."""


def wait_until_healthy(ctx: ServiceContext, container, timeout: float) -> Health:
    """Poll until the health endpoint answers; on failure include the last log lines."""
    deadline = time.monotonic() + timeout
    ctx.reporter.step("Waiting for opencode to answer")
    restarts_before = None
    while True:
        container.reload()
        state = container.attrs["State"]
        restarts = container.attrs.get("RestartCount") or 0
        restarts_before = restarts if restarts_before is None else restarts_before
        # A restart loop counts as running; a restart or two is Docker's restart policy
        # at work (an OOM kill), more is an opencode that cannot start.
        looping = restarts - restarts_before >= RESTARTS_GIVING_UP
        if not state.get("Running") or looping:
            ended = "keeps exiting" if looping else "stopped"
            raise NotHealthy(
                f"the container {ended} (exit code {state.get('ExitCode')}) before opencode "
                "answered",
                hint="Its last log lines:\n" + last_logs(container),
            )
        window = max(1, min(READINESS_WINDOW_SECONDS, int(deadline - time.monotonic())))
        health = probe(container, argv=readiness_argv(window))
        if health.healthy:
            return health
        if time.monotonic() >= deadline:
            raise NotHealthy(
                f"opencode did not answer within {timeout:.0f}s ({health.detail})",
                hint="Its last log lines:\n" + last_logs(container),
            )
        time.sleep(0.25)


def last_logs(container, lines: int = 20) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace").rstrip() or "(no output)"
    except Exception as exc:
        return f"(logs unavailable: {exc})"
