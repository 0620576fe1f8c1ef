"""``occ status``: state, URL, health and version of the service."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts, service_work
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import app_state, global_options, make_printer


@click.command("status", cls=ServiceCommand)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (an array for "
              "--group/--all).")
@fleet_options
@global_options
def status_command(as_json: bool) -> None:
    """Show whether the service runs and answers.

    With -q nothing is printed: exit 0 when running and healthy, else 1.

    \b
    Examples:
      occ status
      occ status --json
      occ status --group production
    """
    from opencode_cloud.service.status import collect_status, format_duration

    hosts = fleet_hosts()
    if hosts is not None:
        fleet_status(hosts, as_json)
        return
    service = open_service()
    report = public(collect_status(service))
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
                ("Image", report["image"]),
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
        pairs += [
            ("Binding", f"{report['bind_address']} ({report['exposure']})"),
            ("Auth", report["auth"]),
            ("Config", report["config_path"]),
        ]
        out.key_values(pairs)
        if report["state"] == "absent":
            out.detail("Not started yet: run 'occ start'.")
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
                rows.append([r.host, v["state"], v["health"] or "-",
                             v["opencode_version"] or "-", format_duration(v["uptime_seconds"]),
                             v["url"]])
            else:
                rows.append([r.host, r.status, "-", "-", "-", r.reason])
        out = make_printer()
        out.table(["HOST", "STATE", "HEALTH", "VERSION", "UPTIME", "URL (ON THE HOST)"], rows)
        out.line(counts(results))

    results = run_on_hosts(hosts, service_work(collect_status), as_json=as_json,
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


def drift_text(drift: dict) -> str:
    return f"{drift['key']} runs {drift['running']}, configured {drift['configured']}"
