"""``occ restart``: stop, then start with the same readiness wait."""

from __future__ import annotations

import click

from opencode_cloud.cli.commands.start import report_started, started_summary
from opencode_cloud.cli.fleet import (
    fleet_hosts,
    fleet_options,
    rollout,
    rollout_options,
    run_on_hosts,
    service_work,
)
from opencode_cloud.cli.service_target import (
    ServiceCommand,
    open_service,
    readiness_timeout_option,
)
from opencode_cloud.cli.state import global_options


@click.command("restart", cls=ServiceCommand)
@readiness_timeout_option()
@rollout_options
@fleet_options
@global_options
def restart_command(timeout: float, batch: int | None, no_canary: bool) -> None:
    """Restart the opencode service (applies changed settings).

    With --group/--all it rolls: one host first (the canary), then the rest in batches;
    a host that fails halts it, and the hosts not yet touched are left as they are.

    \b
    Examples:
      occ restart
      occ restart --group production --batch 3
    """
    from opencode_cloud.service.lifecycle import start, stop
    from opencode_cloud.service.mounts import verify_mounts

    def restart(service):
        verify_mounts(service)  # a missing folder: refused while the service still runs
        stop(service)
        return start(service, timeout, mounts_checked=True)

    hosts = fleet_hosts()
    if hosts is not None:
        run_on_hosts(hosts, service_work(restart), summary=started_summary,
                     rollout=rollout(batch, no_canary))
        return
    service = open_service()
    report_started(service, restart(service))
