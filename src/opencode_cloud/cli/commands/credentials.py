"""``occ credentials``: the web UI's username and password (the only command that prints it)."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import one_target_only
from opencode_cloud.cli.service_target import (
    ServiceCommand,
    confirm_or_fail,
    open_service,
    printer_of,
)
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import NotRunningError


@click.command("credentials", cls=ServiceCommand)
@click.option("--json", "as_json", is_flag=True, help='Print {"username": …, "password": …}.')
@click.option("--rotate", is_flag=True, help="Set a new password (web UI and Cockpit); the "
              "running service is recreated with it and the old one stops working.")
@click.option("--yes", "-y", is_flag=True, help="With --rotate: do not ask first.")
@one_target_only
@global_options
def credentials_command(as_json: bool, rotate: bool, yes: bool) -> None:
    """Print the login for the web UI (and Cockpit), or set a new one with --rotate.

    \b
    Examples:
      occ credentials
      occ credentials --json
      occ credentials --rotate --host prod-1
    """
    from opencode_cloud.service.credentials import read_credentials

    if rotate and not yes:
        confirm_or_fail("Set a new password and restart opencode with it (a short downtime; "
                        "the old password stops working)?", "--yes")
    service = open_service()
    if rotate:
        from opencode_cloud.service.lifecycle import rotate_login

        creds, outcome = rotate_login(service)
        printer_of(service).success("New password set." + (
            " opencode runs with it." if outcome else " It applies at the next 'occ start'."))
    else:
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
