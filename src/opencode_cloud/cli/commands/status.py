"""``occ status``: state, URL, health and version of the service."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts, service_work
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import app_state, global_options, make_printer
from opencode_cloud.errors import OccError


@click.command("status", cls=ServiceCommand)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (an array for "
              "--group/--all).")
@click.option("--watch", is_flag=True, help="Refresh a full-screen table until q or Ctrl-C "
              "(without a terminal: one table, or JSON array per line, per refresh).")
@click.option("--interval", type=click.FloatRange(min=1), default=5.0, show_default=True,
              metavar="S", help="Seconds between refreshes with --watch (at least 1).")
@click.option("--count", type=click.IntRange(min=1), metavar="N",
              help="With --watch: stop after N refreshes.")
@click.option("--disk", is_flag=True, help="Also the disk the service's images and volumes "
              "take (always in --json; the Engine counts the volumes, which takes a moment).")
@fleet_options
@global_options
def status_command(as_json: bool, watch: bool, interval: float, count: int | None,
                   disk: bool) -> None:
    """Show whether the service runs and answers.

    With -q nothing is printed: exit 0 when running and healthy, else 1.

    \b
    Examples:
      occ status
      occ status --json
      occ status --disk
      occ status --group production
    """
    from opencode_cloud.output.disk import disk_lines
    from opencode_cloud.service.status import collect_status, format_duration

    hosts = fleet_hosts()
    if disk and (watch or (hosts is not None and not as_json)):
        raise click.UsageError("--disk shows one target's disk: use it without --watch, "
                               "and with --json for --group/--all")
    if watch:
        watch_status(hosts, as_json=as_json, interval=interval, count=count)
        return
    if count is not None:
        raise click.UsageError("--count goes with --watch")
    if hosts is not None:
        fleet_status(hosts, as_json)
        return
    service = open_service()
    report = public(collect_status(service, disk=disk or as_json))
    healthy = report["state"] == "running" and report["health"] == "healthy"
    out = printer_of(service)
    if as_json:
        out.json(report)
    elif not out.quiet:
        state = report["state"]
        if state == "running":
            state += f", {report['health']}"
        pairs = [("State", state), ("URL", report["url"])]
        if service.endpoint.host:
            pairs[-1] = ("URL", f"{report['url']} (on {service.endpoint.host})")
            pairs.append(("From here", f"occ open --host {service.endpoint.host}"))
        if report["container"]:
            pairs += [
                ("opencode", report["opencode_version"] or "-"),
                ("Container", report["container"]),
                ("Image", image_text(report)),
                ("Uptime", format_duration(report["uptime_seconds"])),
                (
                    "Ports",
                    ", ".join(
                        f"{host}:{port} -> {inner}"
                        for inner, (host, port) in sorted(report["ports"].items())
                    )
                    or "-",
                ),
                *resource_lines(report),
            ]
        if report["cockpit_url"]:
            pairs.append(("Cockpit", report["cockpit_url"]))
        if report.get("mounts"):
            pairs.append(("Mounts", "; ".join(mount_text(m) for m in report["mounts"])))
        pairs += disk_lines(report.get("disk"))
        pairs += [
            ("Binding", f"{report['bind_address']} ({report['exposure']})"),
            ("Auth", report["auth"]),
            ("Config", report["config_path"]),
        ]
        out.key_values(pairs)
        if report["state"] == "absent":
            out.detail("Not started yet: run 'occ start'.")
        if report.get("interrupted"):
            host = service.endpoint.host
            on = f" --host {host}" if host else ""
            out.warn(f"{report['interrupted']['text']} (still running elsewhere, or cut "
                     f"off): occ update{on} or occ start{on} finishes it or rolls it back")
        if report["drift"]:
            host = service.endpoint.host
            out.warn("the running container differs from the configuration: "
                     + "; ".join(drift_text(d) for d in report["drift"]))
            out.detail(f"Apply it with: occ restart{f' --host {host}' if host else ''}")
    click.get_current_context().exit(0 if healthy or not out.quiet else 1)


def healthy(report: dict) -> bool:
    return report["state"] == "running" and report["health"] == "healthy"


def fleet_status(hosts: list, as_json: bool) -> None:
    """One table for many hosts: host, state, health, version, uptime, URL on the host."""
    from opencode_cloud.fleet.runner import HostResult
    from opencode_cloud.output.fleet import counts
    from opencode_cloud.service.status import collect_status, format_duration

    def render(results: list[HostResult]) -> None:
        rows = []
        for r in results:
            if r.ok:
                v = r.value
                # a half-finished switch shows in the row (the details: occ status --host)
                state = v["state"] + (f" ({v['interrupted']['operation']} unfinished)"
                                      if v.get("interrupted") else "")
                rows.append([r.host, state, v["health"] or "-",
                             v["opencode_version"] or "-", format_duration(v["uptime_seconds"]),
                             v["url"]])
            else:
                rows.append([r.host, r.status, "-", "-", "-", r.reason])
        out = make_printer()
        out.table(["HOST", "STATE", "HEALTH", "VERSION", "UPTIME", "URL (ON THE HOST)"], rows)
        out.line(counts(results))

    results = run_on_hosts(hosts, service_work(lambda s: collect_status(s, disk=as_json)),
                           as_json=as_json,
                           to_json=public, recap=False, exit=False)
    if not as_json and not app_state().quiet:
        render(results)
    all_ok = all(r.ok for r in results)
    if app_state().quiet:
        all_ok = all_ok and all(healthy(r.value) for r in results)
    click.get_current_context().exit(0 if all_ok else 1)


def public(report: dict) -> dict:
    """The report without the fields kept only for the next refresh."""
    return {key: value for key, value in report.items() if not key.startswith("_")}


def resource_lines(report: dict) -> list[tuple[str, str]]:
    from opencode_cloud.service.status import format_bytes

    lines = []
    memory = report.get("memory")
    if memory:
        limit = format_bytes(memory["limit_bytes"]) if memory["limit_bytes"] else "no limit"
        lines.append(("Memory", f"{format_bytes(memory['used_bytes'])} of {limit}"))
    if report.get("cpu_percent") is not None:
        lines.append(("CPU", f"{report['cpu_percent']}% of one core"))
    restarts = report.get("restarts") or 0
    reason = report.get("last_restart_reason")
    lines.append(("Restarts", f"{restarts}" + (f" (last: {reason})" if reason else "")))
    return lines


def image_text(report: dict) -> str:
    """The image, with what the settings add to occ's: packages and a Dockerfile."""
    extras = []
    if report.get("image_packages"):
        extras.append("+ " + ", ".join(report["image_packages"]))
    if report.get("image_dockerfile"):
        extras.append("+ " + report["image_dockerfile"])
    return report["image"] + (f" ({'; '.join(extras)})" if extras else "")


def mount_text(mount: dict) -> str:
    return (f"{mount['host_path']} -> {mount['container_path']}"
            + (" (read-only)" if mount["read_only"] else ""))


def drift_text(drift: dict) -> str:
    return f"{drift['key']} runs {drift['running']}, configured {drift['configured']}"


def watch_status(hosts: list | None, *, as_json: bool, interval: float,
                 count: int | None) -> None:
    """``--watch``: every selected target (or the one --host/--local/default names) over a
    connection kept open for the whole watch."""
    from opencode_cloud.cli.service_target import host_config
    from opencode_cloud.config.store import load_config
    from opencode_cloud.engine.target import engine_for, resolve_host
    from opencode_cloud.fleet.watch import Session, Watcher
    from opencode_cloud.output import watch
    from opencode_cloud.report import Reporter
    from opencode_cloud.service.context import ServiceContext
    from opencode_cloud.service.names import ServiceNames
    from opencode_cloud.service.status import collect_status

    state = app_state()
    if state.quiet:
        raise OccError("--watch shows a table; -q prints nothing",
                       hint="Use 'occ -q status' alone for an exit status, or --watch "
                       "without -q.")
    config, names = load_config(), ServiceNames.from_environment()
    if hosts is None:
        one = resolve_host(state.host, state.local)
        targets = [one]
    else:
        targets = list(hosts)

    def opener(host):
        def open_target():
            engine = engine_for(host, Reporter())  # silent: the table shows failures
            endpoint = engine.__enter__()
            service = ServiceContext(endpoint, host_config(config, host), names, Reporter())
            return service, lambda: engine.__exit__(None, None, None)

        return open_target

    sessions = [Session(h.name if h is not None else "local", opener(h)) for h in targets]
    watcher = Watcher(sessions, collect_status, timeout=interval)
    try:
        watch.watch(watcher, interval=interval, count=count, as_json=as_json,
                    printer=make_printer(), color=state.color)
    finally:
        watcher.close()
