"""``occ cockpit``: open the Cockpit web console of the sandbox."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import one_target_only
from opencode_cloud.cli.service_target import ServiceCommand, open_service
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import OccError


@click.command("cockpit", cls=ServiceCommand)
@click.option("--print-url", is_flag=True, help="Only print the URL, do not open a browser.")
@one_target_only
@global_options
def cockpit_command(print_url: bool) -> None:
    """Open Cockpit (a web console for the sandbox); log in with 'occ credentials'.

    \b
    Examples:
      occ cockpit
      occ cockpit --print-url
    """
    from opencode_cloud.cli.commands.open import bring_home

    service = open_service()
    if not service.config.cockpit_enabled:
        raise OccError(
            "Cockpit is disabled",
            hint="Enable it with 'occ config set cockpit_enabled true', then 'occ restart'.",
        )
    bring_home(service, cockpit=True, print_url=print_url)
