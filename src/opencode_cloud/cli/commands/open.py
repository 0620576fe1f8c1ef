"""``occ open``: bring the web UI (or Cockpit) of a target to this machine's browser.

For a remote target the service stays bound to the remote's loopback; occ forwards a
loopback port here to it over the host's SSH master and keeps it until Ctrl-C.
"""

from __future__ import annotations

import socket
import time

import click

from opencode_cloud.cli.fleet import one_target_only
from opencode_cloud.cli.service_target import ServiceCommand, open_service, printer_of
from opencode_cloud.cli.state import global_options
from opencode_cloud.errors import NotRunningError, OccError
from opencode_cloud.service.context import ServiceContext


@click.command("open", cls=ServiceCommand)
@click.option("--cockpit", is_flag=True, help="Cockpit instead of the opencode web UI.")
@click.option("--local-port", type=click.IntRange(1, 65535),
              help="Port on this machine for a remote target (default: the same as there, "
              "or a free one).")
@click.option("--print-url", is_flag=True, help="Print the URL instead of opening a browser.")
@one_target_only
@global_options
def open_command(cockpit: bool, local_port: int | None, print_url: bool) -> None:
    """Open the web UI in your browser; for a remote host, through an SSH forward.

    \b
    Examples:
      occ open --host prod-1             # forwards, opens the browser, Ctrl-C ends it
      occ open --host prod-1 --print-url --local-port 8080
      occ open --cockpit
    """
    bring_home(open_service(), cockpit=cockpit, local_port=local_port, print_url=print_url)


def published_port(service: ServiceContext, cockpit: bool) -> tuple[str, int]:
    """(address, port) the running container publishes the web UI or Cockpit on."""
    from opencode_cloud.service.spec import COCKPIT_PORT, WEB_PORT
    from opencode_cloud.service.status import collect_status

    report = collect_status(service)
    if report["state"] != "running":
        raise NotRunningError("opencode is not running", hint="Start it with: occ start")
    inner = f"{COCKPIT_PORT if cockpit else WEB_PORT}/tcp"
    if inner not in report["ports"]:
        raise OccError("Cockpit is not published by the running container",
                       hint="occ config set cockpit_enabled true, then occ restart")
    address, port = report["ports"][inner]
    if address in ("0.0.0.0", "::"):
        address = "127.0.0.1" if address == "0.0.0.0" else "::1"
    return address, port


def bring_home(service: ServiceContext, *, cockpit: bool = False, local_port: int | None = None,
               print_url: bool = False) -> None:
    from opencode_cloud.service.spec import url_for

    address, port = published_port(service, cockpit)
    endpoint = service.endpoint
    out = printer_of(service)
    what = "Cockpit" if cockpit else "the opencode web UI"
    if endpoint.forward_port is None:  # this machine: the URL works as it is
        url = url_for(address, port)
        _show(out, url, what, print_url)
        return
    here = local_port or (port if _port_free(port) else _free_port())
    endpoint.forward_port(here, address, port)
    url = url_for("127.0.0.1", here)
    _show(out, url, what, print_url)
    out.line(f"Forwarding {url} to {address}:{port} on {endpoint.host}; Ctrl-C ends it.")
    relays = callback_relays(service, out)
    try:
        while endpoint.connection_alive is None or endpoint.connection_alive():
            time.sleep(1)
    except KeyboardInterrupt:
        out.line("Forward closed.")
        return
    finally:
        for relay in relays:
            relay.close()
    raise OccError(f"lost the SSH connection to {endpoint.host}; the forward is gone",
                   hint=f"Check the host with: occ host test {endpoint.host}")


def callback_relays(service: ServiceContext, out) -> list:
    """Provider login callbacks (``oauth_callback_ports``) from here into the sandbox; a
    port already taken here is reported and skipped."""
    from opencode_cloud.service.port_relay import PortRelay

    relays, taken = [], []
    for port in service.config.oauth_callback_ports:
        try:
            relays.append(PortRelay(service, port))
        except OSError:
            taken.append(port)
    if relays:
        out.line("Provider logins: " + ", ".join(f"127.0.0.1:{r.port}" for r in relays)
                 + " here reach the sandbox's own callback ports.")
    if taken:
        out.warn(f"port{'s' if len(taken) > 1 else ''} {', '.join(map(str, taken))} "
                 "already in use on this machine: a provider login that calls back there "
                 "will not reach the sandbox (free it, or change oauth_callback_ports)")
    return relays


def _show(out, url: str, what: str, print_url: bool) -> None:
    if print_url:
        click.echo(url)  # plain, for scripts: no prefix
        return
    login = "user opencoder, password from occ credentials" if what == "Cockpit" else \
        "occ credentials"
    out.line(f"Opening {what} at {url} (login: {login})")
    click.launch(url)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
