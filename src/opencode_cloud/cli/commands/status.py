"""``occ status``: state, URL, health and version of the service."""

from __future__ import annotations

import click

from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import global_options


@click.command("status", cls=ServiceCommand)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@global_options
def status_command(as_json: bool) -> None:
    """Show whether the service runs and answers.

    With -q nothing is printed: exit 0 when running and healthy, else 1.

    \b
    Examples:
      occ status
      occ status --json
    """
    from opencode_cloud.service.status import collect_status, format_duration

    service = open_service()
    report = collect_status(service)
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
    click.get_current_context().exit(0 if healthy or not out.quiet else 1)
