"""What ``occ status`` reports, gathered in as few Engine calls as possible."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from opencode_cloud.config import paths
from opencode_cloud.service import spec
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.health import docker_health, probe


def collect_status(ctx: ServiceContext, previous: dict[str, Any] | None = None,
                   disk: bool = False) -> dict[str, Any]:
    """State, health, version, resource use, restarts and drift of the service.

    The container's inspect and one sample of its resource use are asked at once (two
    requests side by side: over SSH they cost the round trips of one). When the health
    log already carries the container's own figures (the watchdog's line), the sample is
    not waited for: Docker's one-shot stats can take up to a second (its collection
    interval), and those figures are as good. ``previous``: the
    report of the last refresh (``--watch``), so CPU use is over that interval rather
    than since the container started. ``disk``: also the disk the images and volumes take
    (``report["disk"]``, asked beside the inspect: it costs the Engine a walk of the volumes).
    """
    config = ctx.config
    disk_answer = _disk_usage_beside(ctx) if disk else None
    attrs, sample, marker = _inspect_and_stats(ctx)
    web_url = spec.url_for(config.bind_address, config.opencode_web_port)
    report: dict[str, Any] = {
        "state": "absent",
        "url": web_url,
        "health": None,
        "opencode_version": None,
        "image": None,
        "container": None,
        "uptime_seconds": None,
        "ports": {},
        "cockpit_url": None,
        "bind_address": config.bind_address,
        "exposure": "network" if config.exposed_to_network else "local-only",
        "auth": "basic auth (user and password from 'occ credentials')",
        "config_path": str(paths.config_file()),
        "docker_version": None,
        "memory": None,
        "cpu_percent": None,
        "restarts": None,
        "last_restart_reason": None,
        "last_restart_at": None,
        "drift": [],
        "interrupted": None,  # an update or start cut off half-way (service/switch.py)
        "image_packages": list(config.image_packages),  # the running image's, once there
        "image_dockerfile": config.image_dockerfile,
        "mounts": [m.to_dict() for m in config.mount_list],  # configured (see drift)
    }
    report["docker_version"] = ctx.endpoint.server_version
    marker_attrs = marker()
    if marker_attrs is not None or attrs is None:  # (a cut-off may have left no container)
        report["interrupted"] = _interrupted(ctx, marker_attrs, attrs)
    if disk_answer is not None:
        report["disk"] = disk_answer((attrs or {}).get("Image"))
    if attrs is None:
        return report

    state = attrs["State"]
    report["container"] = attrs["Id"][:12]
    report["image"] = attrs["Config"]["Image"]
    report["state"] = "running" if state.get("Running") else "stopped"
    report["ports"] = _ports(attrs)
    web = report["ports"].get(f"{spec.WEB_PORT}/tcp")
    if web:
        report["url"] = spec.url_for(*web)
    cockpit = report["ports"].get(f"{spec.COCKPIT_PORT}/tcp")
    if cockpit:
        report["cockpit_url"] = spec.url_for(*cockpit)
    if state.get("Running"):
        report["uptime_seconds"] = _seconds_since(state.get("StartedAt"))
        # Docker's own health verdict is in the inspect; ask opencode itself only while
        # Docker has none yet (the first seconds after a start).
        health = docker_health(attrs) or probe(ctx.container())
        own = (health.watchdog or {}).get("memory_used")
        stats = None if own else sample()
        report["health"] = "healthy" if health.healthy else "unhealthy"
        report["opencode_version"] = health.version
        report.update(resources(stats, report["uptime_seconds"], previous)
                      or watchdog_resources(health.watchdog, report["uptime_seconds"], previous))
        watchdog = health.watchdog or {}
    else:
        watchdog = {}
    docker_restarts = attrs.get("RestartCount", 0)
    report["restarts"] = docker_restarts + int(watchdog.get("restarts") or 0)
    report["last_restart_reason"] = restart_reason(state, docker_restarts)
    if watchdog.get("restarts"):  # the watchdog's own restarts, inside the container
        report["last_restart_reason"] = watchdog.get("last_reason") or "watchdog"
        report["last_restart_at"] = _iso(watchdog.get("last_at"))
    from opencode_cloud.image.refs import service_ref

    running = spec.running_summary(attrs)
    report["image_packages"] = running.get("image_packages") or []
    report["image_dockerfile"] = running.get("image_dockerfile")
    report["drift"] = spec.configuration_drift(attrs["Config"].get("Labels") or {},
                                               attrs["Config"]["Image"], config,
                                               service_ref(config))
    return report


def _inspect_and_stats(ctx: ServiceContext):
    """The inspect, and functions that wait for the stats sample and the operation
    marker's inspect, both asked beside it (three requests at once, one round trip)."""
    import threading

    name, endpoint = ctx.names.container, ctx.endpoint
    answers: dict[str, Any] = {}

    def asker(key: str, ask):
        def run() -> None:
            try:
                answers[key] = ask()
            except Exception as exc:  # noqa: BLE001  details; the container's state is not
                answers[key] = exc
        worker = threading.Thread(target=run, daemon=True)
        worker.start()

        def wait() -> Any:
            worker.join(STATS_TIMEOUT)
            answer = answers.get(key)
            return None if isinstance(answer, Exception) else answer
        return wait

    sample = asker("stats", lambda: endpoint.container_stats(name))
    marker = asker("marker", lambda: endpoint.inspect_volume(ctx.names.operation_marker))
    attrs = endpoint.inspect_container(name)
    return attrs, sample, marker


def _interrupted(ctx: ServiceContext, marker: dict[str, Any] | None,
                 attrs: dict[str, Any] | None) -> dict[str, Any] | None:
    from opencode_cloud.service import switch

    replaced = ctx.endpoint.inspect_container(switch.replaced_name(ctx))
    if marker is None and replaced is None:
        return None
    def state(attrs: dict[str, Any] | None) -> str | None:
        if attrs is None:
            return None
        return "running" if attrs["State"].get("Running") else attrs["State"].get("Status")

    pending = switch.pending_from(marker, state(replaced), state(attrs))
    if pending is None:  # a replaced container without a marker: a switch left it
        pending = switch.Pending("update or start", "?", "?",
                                 switch.step_reached(state(replaced), state(attrs)))
    return {**pending.to_json(), "text": pending.describe()}


STATS_TIMEOUT = 10.0


def _disk_usage_beside(ctx: ServiceContext):
    """Starts ``/system/df`` in a thread; returns a function that waits for it and makes
    the disk report (``{"error": …}`` when the Engine could not count)."""
    import threading

    from opencode_cloud.errors import OccError
    from opencode_cloud.service.disk import disk_report
    from opencode_cloud.service.images import service_repository, system_df

    answer: list[Any] = [None]

    def ask() -> None:
        try:
            answer[0] = system_df(ctx)
        except OccError as exc:
            answer[0] = exc
        except Exception as exc:  # noqa: BLE001  disk figures are a detail; state is not
            answer[0] = OccError(str(exc))

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()

    def report(current_image_id: str | None) -> dict[str, Any]:
        worker.join()
        if isinstance(answer[0], OccError):
            return {"error": answer[0].message}
        return disk_report(answer[0], ctx.names, service_repository(ctx),
                           current_image_id)

    return report


def resources(stats: dict[str, Any] | None, uptime: int | None,
              previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Memory in use (without the page cache, as ``docker stats`` counts it) and its limit,
    and CPU use in % of one core: over the last interval if ``previous`` has a sample,
    else since the container started. {} when the sample is empty (some Engines answer
    with zeros when they cannot read the container's cgroup)."""
    if not stats or not stats.get("memory_stats") or not stats["memory_stats"].get("usage"):
        return {}
    memory = stats["memory_stats"]
    inner = memory.get("stats") or {}
    cache = inner.get("inactive_file", inner.get("total_inactive_file", inner.get("cache", 0)))
    used = max(0, int(memory.get("usage", 0)) - int(cache or 0))
    cpu_ns = int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0))
    return use_figures(used, int(memory.get("limit", 0)), cpu_ns, uptime, previous)


def watchdog_resources(figures: dict[str, Any] | None, uptime: int | None,
                       previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The same figures from the probe's line (the container's own cgroup files, read at
    its last health check, at most 10 s ago)."""
    if not figures or not figures.get("memory_used"):
        return {}
    return use_figures(int(figures["memory_used"]), int(figures.get("memory_limit") or 0),
                       int(figures.get("cpu_ns") or 0), uptime, previous)


def use_figures(used: int, limit: int, cpu_ns: int, uptime: int | None,
                previous: dict[str, Any] | None) -> dict[str, Any]:
    now = time.time()
    cpu = None
    sample = (previous or {}).get("_cpu_sample")
    if sample and cpu_ns == sample[0] and previous.get("cpu_percent") is not None:
        # the same reading again (the probe's figures are renewed every 10 s): keep both
        return {"memory": {"used_bytes": used, "limit_bytes": limit or None},
                "cpu_percent": previous["cpu_percent"], "_cpu_sample": sample}
    if sample and now > sample[1]:
        cpu = (cpu_ns - sample[0]) / ((now - sample[1]) * 1e9) * 100
    elif uptime:
        cpu = cpu_ns / (uptime * 1e9) * 100
    return {"memory": {"used_bytes": used, "limit_bytes": limit or None},
            "cpu_percent": None if cpu is None else round(max(cpu, 0.0), 1),
            "_cpu_sample": (cpu_ns, now)}


def restart_reason(state: dict[str, Any], restarts: int) -> str | None:
    """Why the container last stopped, when it was restarted (Docker's view)."""
    if state.get("OOMKilled"):
        return "OOM-killed"
    if not restarts and state.get("Status") != "restarting":
        return None
    code = state.get("ExitCode")
    if code == 137:
        return "killed (exit code 137: out of memory or SIGKILL)"
    return f"exited with code {code}"


def _iso(epoch: Any) -> str | None:
    try:
        return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return None


def format_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _ports(attrs: dict[str, Any]) -> dict[str, tuple[str, int]]:
    published = {}
    for container_port, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
        if bindings:
            first = bindings[0]
            published[container_port] = (first.get("HostIp") or "0.0.0.0", int(first["HostPort"]))
    return published


def _seconds_since(started: str | None) -> int | None:
    if not started:
        return None
    main, _, fraction = started.rstrip("Z").partition(".")
    when = datetime.fromisoformat(main).replace(tzinfo=UTC)
    return int((datetime.now(UTC) - when).total_seconds())


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
