"""``occ credentials``: the web UI's username and password (the only command that prints it)."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import one_target_only
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import NotRunningError


@click.command("credentials", cls=ServiceCommand)
@click.option("--json", "as_json", is_flag=True, help='Print {"username": …, "password": …}.')
@one_target_only
@global_options
def credentials_command(as_json: bool) -> None:
    """Print the login for the web UI (and Cockpit).

    \b
    Examples:
      occ credentials
      occ credentials --json
    """
    from opencode_cloud.service.credentials import read_credentials

    service = open_service()
    creds = read_credentials(service.client, service.names)
    if creds is None:
        raise NotRunningError(
            "no credentials yet: the service was never started here",
            hint="Run 'occ start'; it generates them.",
        )
    if as_json:
        printer_of(service).json({"username": creds.username, "password": creds.password})
    else:
        printer_of(service).key_values([("Username", creds.username), ("Password", creds.password)])
