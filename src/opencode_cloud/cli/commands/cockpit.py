"""``occ cockpit``: open the Cockpit web console of the sandbox."""

from __future__ import annotations

import click

from opencode_cloud.cli.service_target import open_service
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import NotRunningError, OccError


@click.command("cockpit")
@click.option("--print-url", is_flag=True, help="Only print the URL, do not open a browser.")
@global_options
def cockpit_command(print_url: bool) -> None:
    """Open Cockpit (a web console for the sandbox); log in with 'occ credentials'.

    \b
    Examples:
      occ cockpit
      occ cockpit --print-url
    """
    from opencode_cloud.service.status import collect_status

    service = open_service()
    if not service.config.cockpit_enabled:
        raise OccError(
            "Cockpit is disabled",
            hint="Enable it with 'occ config set cockpit_enabled true', then 'occ restart'.",
        )
    report = collect_status(service)
    if report["state"] != "running":
        raise NotRunningError("opencode is not running", hint="Start it with: occ start")
    if not report["cockpit_url"]:
        raise OccError(
            "Cockpit is enabled in the settings but the running container predates that",
            hint="Apply it with: occ restart",
        )
    url = report["cockpit_url"]
    if print_url:
        click.echo(url)
        return
    service.printer.line(
        f"Opening {url} (login: 'opencoder' with the password from 'occ credentials')"
    )
    click.launch(url)
