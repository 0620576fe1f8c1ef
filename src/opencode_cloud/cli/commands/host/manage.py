"""``occ host remove``, ``occ host default`` and ``occ host disconnect``."""

from __future__ import annotations

import contextlib

import click

from opencode_cloud.cli.commands.host import fields
from opencode_cloud.cli.state import (
    LocalOnlyCommand,
    complete_with,
    global_options,
    interactive,
    make_printer,
)
from opencode_cloud.errors import ConfigError, OccError
from opencode_cloud.hosts import store
from opencode_cloud.hosts.model import Host, HostsFile


@click.command("remove", cls=LocalOnlyCommand)
@click.argument("name", shell_complete=complete_with("registered_host_names"))
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@global_options
def remove(name: str, force: bool) -> None:
    """Remove a host (removing the default host makes this machine the default again)."""
    hosts = store.load_hosts(keep_broken=True)  # a broken entry can be removed too
    host = hosts.get(name)
    if host is None and name not in hosts.broken:
        raise store.unknown_host(name, hosts)
    if not force:
        if not interactive():
            raise ConfigError(f"refusing to remove host '{name}' without confirmation",
                              hint=f"Run 'occ host remove {name} --force'.")
        what = fields.describe(host.config) if host else "an entry that is not valid"
        click.confirm(f"Remove host '{name}' ({what})?", abort=True)
    if host is not None:
        quiet_disconnect(host)
    was_default: list[bool] = []

    def change(hosts: HostsFile) -> HostsFile:
        if name not in hosts.hosts and name not in hosts.broken:
            raise store.unknown_host(name, hosts)
        was_default.append(hosts.default_host == name)
        return hosts.without_host(name)

    store.change_hosts(change, keep_broken=True)
    out = make_printer()
    out.success(f"Removed host '{name}'.")
    if was_default and was_default[-1]:
        out.line("It was the default host: commands now act on this machine.")


def quiet_disconnect(host: Host) -> None:
    """Close a host's master before its entry changes (the socket name depends on it)."""
    from opencode_cloud.ssh.connection import HostConnection

    with contextlib.suppress(OccError):
        HostConnection(host).disconnect()


@click.command("default", cls=LocalOnlyCommand)
@click.argument("name", required=False, shell_complete=complete_with("registered_host_names"))
@global_options
def default(name: str | None) -> None:
    """Show or set the default host ('local' = this machine)."""
    out = make_printer()
    if name is None:
        current = store.load_hosts().default_host
        click.echo(current if current else "local")
        if not current:
            out.detail("(no default host: commands act on this machine)")
        return
    if name == store.LOCAL:
        store.change_hosts(lambda hosts: hosts.with_default(None))
        out.success("Default cleared: commands act on this machine.")
        return

    def change(hosts: HostsFile) -> HostsFile:
        if name not in hosts.hosts:
            raise store.unknown_host(name, hosts)
        return hosts.with_default(name)

    store.change_hosts(change)
    out.success(f"Default host: {name} (use --local or 'occ host default local' for this "
                "machine).")


@click.command("disconnect", cls=LocalOnlyCommand)
@click.argument("name", required=False, shell_complete=complete_with("registered_host_names"))
@click.option("--all", "all_hosts", is_flag=True, help="Every host in hosts.json.")
@global_options
def disconnect(name: str | None, all_hosts: bool) -> None:
    """Close the kept-open SSH connection to a host (or to all)."""
    if (name is None) == (not all_hosts):
        raise click.UsageError("give a host NAME or --all")
    hosts = store.load_hosts()
    targets = [hosts.get(n) for n in hosts.names()] if all_hosts \
        else [store.resolve_host(name or "", hosts)]
    from opencode_cloud.ssh.connection import HostConnection

    closed = 0
    for host in targets:
        assert host is not None
        out = make_printer(host=host.name)
        if HostConnection(host).disconnect():
            closed += 1
            out.success("connection closed")
        elif not all_hosts:
            out.line("no open connection")
    if all_hosts:
        make_printer().line(f"Closed {closed} connection{'s' if closed != 1 else ''}.")


COMMANDS = [remove, default, disconnect]
