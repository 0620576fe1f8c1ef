"""``occ restart``: stop, then start with the same readiness wait."""

from __future__ import annotations

import click

from opencode_cloud.cli.commands.start import report_started
from opencode_cloud.cli.service_target import (
    ServiceCommand,
    open_service,
    readiness_timeout_option,
)
from opencode_cloud.cli.state import global_options


@click.command("restart", cls=ServiceCommand)
@readiness_timeout_option()
@global_options
def restart_command(timeout: float) -> None:
    """Restart the opencode service (applies changed settings).

    \b
    Example:
      occ restart
    """
    from opencode_cloud.service.lifecycle import start, stop

    service = open_service()
    stop(service)
    report_started(service, start(service, timeout))
