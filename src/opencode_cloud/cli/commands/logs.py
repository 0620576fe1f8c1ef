"""``occ logs``: the service's output."""

from __future__ import annotations

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts, service_work
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import global_options


def _lines(value: str) -> int | None:
    if value == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter("give a number of lines or 'all'") from None
    if count < 0:
        raise click.BadParameter("give a number of lines or 'all'")
    return count


@click.command("logs", cls=ServiceCommand)
@click.option(
    "-n",
    "--lines",
    default="100",
    show_default=True,
    metavar="N|all",
    help="How many recent lines to show.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--timestamps", is_flag=True, help="Show when each line was written.")
@click.option("--grep", metavar="TEXT", help="Only lines containing TEXT.")
@fleet_options
@global_options
def logs_command(lines: str, follow: bool, timestamps: bool, grep: str | None) -> None:
    """Show the opencode service's logs.

    With --group/--all every host's lines come as they arrive, each with its [NAME]; a
    host whose connection breaks is reported and the others go on.

    \b
    Examples:
      occ logs -n 50
      occ logs -f --grep error
      occ logs -f --all
    """
    from opencode_cloud.service.logs import log_lines

    count = _lines(lines)
    hosts = fleet_hosts()
    if hosts is not None:
        def host_logs(service) -> None:
            for line in log_lines(service, count, follow, timestamps, grep):
                service.reporter.output(line)
            if follow:
                service.reporter.info(f"The container is {container_state(service)}; no more "
                                      "logs to follow.")

        # Ctrl-C ends following everywhere; that is not an error.
        run_on_hosts(hosts, service_work(host_logs), stream=True, recap=False,
                     ok_statuses=("ok", "interrupted"))
        return
    service = open_service()
    try:
        for line in log_lines(service, count, follow, timestamps, grep):
            printer_of(service).raw(line)
    except KeyboardInterrupt:  # Ctrl-C ends following; that is not an error
        return
    if follow:
        # The stream also ends when the connection to the Engine is lost (for a remote
        # target: SSH died). Asking the Engine again tells the two apart; a lost Engine
        # raises, and becomes an explained error with a non-zero exit.
        state = container_state(service)
        printer_of(service).line(f"The container is {state}; no more logs to follow.")


def container_state(service) -> str:
    """Asked again after a followed stream ended: a lost Engine raises here."""
    container = service.container()
    return container.status if container is not None else "removed"
