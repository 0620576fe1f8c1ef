"""``occ host add``: a new entry, saved only after SSH to the host works (unless told)."""

from __future__ import annotations

import os

import click

from opencode_cloud.cli.commands.host import fields
from opencode_cloud.cli.commands.host.check import print_report
from opencode_cloud.cli.state import (
    LocalOnlyCommand,
    global_options,
    interactive,
    make_printer,
    make_reporter,
)
from opencode_cloud.errors import ConfigError, OccError
from opencode_cloud.hosts import store
from opencode_cloud.hosts import validation as v
from opencode_cloud.hosts.model import Host, HostConfig, HostsFile


@click.command("add", cls=LocalOnlyCommand)
@click.argument("name")
@click.argument("hostname")
@click.option("-u", "--user", help="SSH login (default: ~/.ssh/config, else your login name).")
@click.option("-p", "--port", metavar="PORT", help="SSH port (default: ~/.ssh/config, else 22).")
@click.option("-i", "--identity-file", metavar="FILE", help="Private key to use (default: "
              "ssh-agent and ~/.ssh/config).")
@click.option("-J", "--jump-host", metavar="[USER@]HOST[:PORT]",
              help="Jump host(s), comma-separated, like ssh -J.")
@click.option("-g", "--group", "groups", multiple=True, metavar="GROUP",
              help="Put the host in a group (repeatable).")
@click.option("-d", "--description", help="A note for yourself.")
@click.option("--docker-socket", metavar="PATH",
              help="The Engine's socket on the host (default /var/run/docker.sock).")
@click.option("--no-verify", is_flag=True, help="Save without connecting first.")
@click.option("--force", is_flag=True, help="Replace a host of the same name.")
@click.option("--default", "make_default", is_flag=True,
              help="Make it the default host for every command.")
@click.option("-y", "--yes", "assume_yes", is_flag=True,
              help="If Docker is missing there, install it without asking.")
@global_options
def add(name: str, hostname: str, user: str | None, port: str | None,
        identity_file: str | None, jump_host: str | None, groups: tuple[str, ...],
        description: str | None, docker_socket: str | None, no_verify: bool, force: bool,
        make_default: bool, assume_yes: bool) -> None:
    """Add a remote host, after checking that SSH and Docker work there.

    Settings not given come from your ~/.ssh/config as ssh resolves them, so
    'occ host add web1 web1' works for a host already set up there.

    If SSH works but Docker is missing, the host is saved (marked as needing Docker) and
    occ offers to install Docker: it shows the commands and asks first (--yes: it does
    not ask; without a terminal and without --yes it installs nothing).
    """
    fields.checked(name, v.check_host_name, "NAME")
    options = fields.parse_options({
        "user": user, "port": port, "identity_file": identity_file, "jump_host": jump_host,
        "description": description, "docker_socket": docker_socket}, empty_clears=False)
    config = fields.build(lambda: HostConfig.from_dict(
        {"hostname": hostname, "groups": list(groups), **options}))
    out = make_printer()
    if name in store.load_hosts().hosts and not force:
        raise exists(name)
    if no_verify:
        if config.identity_file and not os.path.isfile(os.path.expanduser(config.identity_file)):
            out.warn(f"the identity file {config.identity_file} does not exist (yet)")
        save(name, config, force=force, make_default=make_default)
        return
    problem = verify_and_save(name, config, force=force, make_default=make_default,
                              assume_yes=assume_yes)
    if problem is not None:
        out.warn(f"{problem.message}")
        out.detail(f"Hint: {problem.hint}")
        out.detail(f"Check again later with: occ host test {name}")


def verify_and_save(name: str, config: HostConfig, *, force: bool, make_default: bool,
                    assume_yes: bool) -> OccError | None:
    """Check the host (an SSH failure raises: nothing is saved), save it, and offer to
    install Docker when it is missing. Returns what is still wrong there, if anything."""
    from opencode_cloud.engine.probe import DockerState, probe_host
    from opencode_cloud.ssh.connection import HostConnection

    reporter = make_reporter(name)
    with HostConnection(Host(name, config), reporter) as conn:
        report = probe_host(conn)
        print_report(reporter, conn, report)
        missing = report.problem is not None and report.problem.state is DockerState.MISSING
        if missing:
            config = config.changed(docker_missing=True)
        save(name, config, force=force, make_default=make_default)  # before any install:
        if not missing or not (assume_yes or interactive()):       # declining keeps it
            return report.problem
        from opencode_cloud.install.installer import (
            DockerInstallNotConfirmed,
            offer_docker_install,
        )

        try:
            offer_docker_install(conn, Host(name, config), reporter, assume_yes=assume_yes)
        except DockerInstallNotConfirmed as exc:  # a no: the host stays, marked
            return exc
    return None


def save(name: str, config: HostConfig, *, force: bool, make_default: bool) -> None:
    def change(hosts: HostsFile) -> HostsFile:
        if name in hosts.hosts and not force:
            raise exists(name)
        hosts = hosts.with_host(name, config)
        return hosts.with_default(name) if make_default else hosts

    store.change_hosts(change)
    make_printer().success(f"Added host '{name}' ({fields.describe(config)})."
                           + (" It is now the default host." if make_default else ""))


def exists(name: str) -> OccError:
    return ConfigError(f"a host named '{name}' already exists",
                       hint=f"Change it with 'occ host edit {name} …', or replace it with "
                       f"'occ host add {name} … --force'.")


COMMANDS = [add]
