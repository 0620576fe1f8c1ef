"""What ``occ status`` reports, gathered in as few Engine calls as possible."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opencode_cloud.config import paths
from opencode_cloud.service import spec
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.health import docker_health, probe


def collect_status(ctx: ServiceContext) -> dict[str, Any]:
    config = ctx.config
    attrs = ctx.endpoint.inspect_container(ctx.names.container)
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
    }
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
        report["health"] = "healthy" if health.healthy else "unhealthy"
        report["opencode_version"] = health.version
    return report


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
