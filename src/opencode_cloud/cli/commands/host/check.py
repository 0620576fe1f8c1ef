"""``occ host test`` and ``occ host install-docker``: is the host usable, and make it so."""

from __future__ import annotations

from typing import Any

import click

from opencode_cloud.cli.fleet import fleet_hosts, fleet_options, run_on_hosts
from opencode_cloud.cli.state import (
    LocalOnlyCommand,
    complete_with,
    global_options,
    interactive,
    make_printer,
    make_reporter,
)
from opencode_cloud.hosts import store
from opencode_cloud.hosts.model import HostConfig, HostsFile
from opencode_cloud.report import Reporter


def print_report(out: Reporter, conn: Any, report: Any) -> None:
    """What ``probe_host`` found, as the lines ``host add`` and ``host test`` show."""
    from opencode_cloud.engine.probe import DockerState

    c = conn.host.config
    who = f"{c.user}@" if c.user else ""
    how = (f"new connection in {report.connect_ms:.0f} ms" if report.new_connection
           else "reused the open connection")
    out.success(f"SSH: ok, {who}{c.hostname}{':' + str(c.port) if c.port else ''} ({how})")
    if report.os_name:
        out.info(f"OS: {report.os_name}" + (f" ({report.arch})" if report.arch else ""))
    docker = report.docker
    if docker is not None and docker.state is DockerState.OK:
        out.success(f"Docker: server {docker.version} (API {docker.api_version}); socket "
                    f"{report.docker_socket} usable over SSH, round trip "
                    f"{report.command_ms:.0f} ms")
    elif docker is not None:
        out.info(f"Docker: {docker.state.value}")
    boot = report.boot
    if boot is not None and boot.enabled:
        out.success(f"Docker at boot: enabled ({boot.init}); the service comes back after a "
                    "reboot")
    elif boot is not None and boot.enabled is False:
        out.warn(f"Docker at boot: not enabled ({boot.init}); after a reboot the service "
                 f"stays down until Docker is started. On the host: {boot.fix}")
    elif boot is not None:
        out.info("Docker at boot: unknown (no init system occ knows); make sure the host "
                 "starts dockerd when it boots")


@click.command("test", cls=LocalOnlyCommand)
@click.argument("name", required=False, shell_complete=complete_with("registered_host_names"))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("-y", "--yes", "assume_yes", is_flag=True,
              help="If Docker is missing there, install it without asking.")
@fleet_options
@global_options
def test(name: str | None, as_json: bool, assume_yes: bool) -> None:
    """Check SSH (and its round trip), the OS and Docker on a host (or on a group).

    The exit status is 0 only if Docker there is usable; with -q nothing but errors
    is printed. If Docker is missing, occ offers to install it in a terminal (or with
    --yes); with --json it only reports. With --group/--all it only reports.
    """
    from opencode_cloud.engine.probe import DockerState, probe_host
    from opencode_cloud.ssh.connection import HostConnection

    hosts = fleet_hosts()
    if hosts is not None:
        if name is not None:
            raise click.UsageError("give a host NAME or --group/--all, not both")
        run_on_hosts(hosts, test_one, as_json=as_json, to_json=lambda r: r.to_json(),
                     summary=lambda r: f"Docker {r.docker.version}, {r.os_name}")
        return
    if name is None:
        raise click.UsageError("give a host NAME (or --group/--all)")
    host = store.resolve_host(name)
    reporter = make_reporter(name)
    with HostConnection(host, reporter) as conn:
        report = probe_host(conn, with_boot=True)
        if as_json:
            make_printer().json(report.to_json())
        else:
            print_report(reporter, conn, report)
        missing = report.problem is not None and report.problem.state is DockerState.MISSING
        if missing != host.config.docker_missing:
            set_docker_missing(name, host.config, missing)
        if missing and not as_json and (assume_yes or interactive()):
            from opencode_cloud.install.installer import offer_docker_install

            offer_docker_install(conn, host, reporter, assume_yes=assume_yes)  # a no raises
            print_report(reporter, conn, probe_host(conn, with_boot=True))
            return
    if report.problem is not None:
        raise report.problem


def test_one(task):
    """One host of ``host test --group``: the probe's report, or its problem as the error."""
    from opencode_cloud.engine.probe import probe_host
    from opencode_cloud.ssh.connection import HostConnection

    conn = task.enter(HostConnection(task.host, task.reporter))
    report = probe_host(conn, with_boot=True)
    print_report(task.reporter, conn, report)
    if report.problem is not None:
        raise report.problem
    return report


@click.command("install-docker", cls=LocalOnlyCommand)
@click.argument("name", shell_complete=complete_with("registered_host_names"))
@click.option("-y", "--yes", "assume_yes", is_flag=True,
              help="Do not ask (for scripts). sudo may still ask for its password.")
@global_options
def install_docker(name: str, assume_yes: bool) -> None:
    """Install Docker on a host, or finish a half-done install.

    NAME 'local' means this machine (its commands run here, through sudo unless occ runs
    as root; DOCKER_HOST, if set, names the socket to check).

    occ shows the distribution it found and the exact commands, and asks first. It uses
    the distribution's own signed packages (or Docker's signed repository), starts the
    daemon now and at boot, adds your SSH user to the docker group, and checks that the
    Engine answers over SSH. Running it again is safe: it finishes what is left.
    """
    from opencode_cloud.engine.probe import DockerState, probe_host
    from opencode_cloud.install.installer import LOCAL, offer_docker_install
    from opencode_cloud.ssh.connection import HostConnection

    if name == LOCAL:
        install_docker_here(assume_yes)
        return
    host = store.resolve_host(name)
    reporter = make_reporter(name)
    with HostConnection(host, reporter) as conn:
        report = probe_host(conn)
        docker = report.docker
        if docker is not None and docker.state is DockerState.OK:
            if host.config.docker_missing:
                set_docker_missing(name, host.config, False)
            reporter.success(f"Docker {docker.version} already works on {name}; nothing to do.")
            return
        if report.problem is not None and report.problem.state is DockerState.NO_FORWARDING:
            raise report.problem  # installing cannot fix the host's sshd settings
        offer_docker_install(conn, host, reporter, assume_yes=assume_yes)


def install_docker_here(assume_yes: bool) -> None:
    """``occ host install-docker local``: the same offer for this machine's Engine
    (DOCKER_HOST, else /var/run/docker.sock), its commands run here."""
    from opencode_cloud.engine.endpoint import DockerEndpoint
    from opencode_cloud.install.local import offer_local_docker_install

    reporter = make_reporter()
    base_url = DockerEndpoint.from_environment().base_url
    if offer_local_docker_install(base_url, reporter, assume_yes=assume_yes) is None:
        reporter.success("Docker already works on this machine; nothing to do.")


def set_docker_missing(name: str, seen: HostConfig, missing: bool) -> None:
    def change(hosts: HostsFile) -> HostsFile:
        current = hosts.hosts.get(name)
        if current != seen:  # changed meanwhile: leave it alone
            return hosts
        return hosts.with_host(name, current.changed(docker_missing=missing))

    store.change_hosts(change)


COMMANDS = [test, install_docker]
