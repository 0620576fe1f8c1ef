"""``occ host``: the registry of remote hosts (hosts.json) and their SSH connections."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import click

from opencode_cloud.cli.state import LocalOnlyGroup, global_options, make_printer
from opencode_cloud.config import paths
from opencode_cloud.errors import ConfigError, OccError
from opencode_cloud.hosts import store
from opencode_cloud.hosts import validation as v
from opencode_cloud.hosts.model import FieldError, Host, HostConfig, HostsFile

# The fields `host show` resolves through `ssh -G`: hosts.json field -> ssh -G name.
RESOLVED_FIELDS = (("hostname", "hostname"), ("user", "user"), ("port", "port"),
                   ("identity_file", "identityfile"), ("jump_host", "proxyjump"))


def _check(value: Any, check: Callable[[Any], Any], param: str) -> Any:
    """Run a validation check on CLI input; a bad value is a usage error naming the option."""
    try:
        return check(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param) from None


def _port(text: str, param: str = "'-p' / '--port'") -> int:
    return _check(text, v.parse_port, param)


def _identity(path: str) -> str:
    """Keep ``~/…`` as typed (portable between machines); make a relative path absolute."""
    if not path.startswith("~") and not os.path.isabs(path):
        path = os.path.abspath(path)
    return _check(path, v.check_identity_file, "'-i' / '--identity-file'")


def _describe(config: HostConfig) -> str:
    user = f"{config.user}@" if config.user else ""
    port = f":{config.port}" if config.port else ""
    jump = f" via {config.jump_host}" if config.jump_host else ""
    return f"{user}{config.hostname}{port}{jump}"


def _connection(host: Host, out: Any = None):
    from opencode_cloud.ssh.connection import HostConnection

    return HostConnection(host, out)


@click.group("host", cls=LocalOnlyGroup)
@global_options
def host_group() -> None:
    """Manage remote hosts (hosts.json) and their SSH connections.

    \b
    Examples:
      occ host add web1 203.0.113.10 -u deploy -i ~/.ssh/id_ed25519
      occ host add inner 10.0.0.5 -J deploy@bastion.example.com
      occ host test web1
      occ host install-docker web1   (asks first; --yes for scripts)
      occ host default web1      (commands then act on web1; 'local' undoes it)
    """


# -- add ---------------------------------------------------------------------------------
@host_group.command("add")
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
    _check(name, v.check_host_name, "NAME")
    data: dict[str, Any] = {
        "hostname": _check(hostname, v.check_hostname, "HOSTNAME"),
        "user": None if user is None else _check(user, v.check_user, "'-u' / '--user'"),
        "port": None if port is None else _port(port),
        "identity_file": None if identity_file is None else _identity(identity_file),
        "jump_host": None if jump_host is None
        else _check(jump_host, v.check_jump_host, "'-J' / '--jump-host'"),
        "groups": [_check(g, v.check_group, "'-g' / '--group'") for g in groups],
        "description": None if description is None
        else _check(description, v.check_description, "'-d' / '--description'"),
        "docker_socket": None if docker_socket is None
        else _check(docker_socket, v.check_docker_socket, "'--docker-socket'"),
    }
    config = HostConfig.from_dict(data)
    out = make_printer()
    existing = store.load_hosts()
    if name in existing.hosts and not force:
        raise _exists(name)

    def save(config: HostConfig) -> None:
        def change(hosts: HostsFile) -> HostsFile:
            if name in hosts.hosts and not force:
                raise _exists(name)
            hosts = hosts.with_host(name, config)
            return hosts.with_default(name) if make_default else hosts

        store.change_hosts(change)
        out.success(f"Added host '{name}' ({_describe(config)})."
                    + (" It is now the default host." if make_default else ""))

    if no_verify:
        if config.identity_file and not os.path.isfile(os.path.expanduser(config.identity_file)):
            out.warn(f"the identity file {config.identity_file} does not exist (yet)")
        save(config)
        return

    from opencode_cloud.hosts.probe import DockerState, probe_host

    host_out = make_printer(host=name)
    with _connection(Host(name, config), host_out) as conn:
        report = probe_host(conn)  # an SSH failure raises: nothing is saved
        _print_report(host_out, conn, report)
        problem: OccError | None = report.problem
        missing = report.problem is not None and report.problem.state is DockerState.MISSING
        if missing:
            config = config.changed(docker_missing=True)
        save(config)  # saved (and marked) before any install: declining keeps it
        if missing and (assume_yes or _terminal()):
            from opencode_cloud.install.installer import (
                DockerInstallNotConfirmed,
                offer_docker_install,
            )

            try:
                offer_docker_install(conn, Host(name, config), host_out, assume_yes=assume_yes)
                return
            except DockerInstallNotConfirmed as exc:  # a no: the host stays, marked
                problem = exc
    if problem is not None:
        out.warn(f"{problem.message}")
        out.detail(f"Hint: {problem.hint}")
        out.detail(f"Check again later with: occ host test {name}")


def _terminal() -> bool:
    return click.get_text_stream("stdin").isatty()


def _exists(name: str) -> OccError:
    return ConfigError(f"a host named '{name}' already exists",
                       hint=f"Change it with 'occ host edit {name} …', or replace it with "
                       f"'occ host add {name} … --force'.")


def _print_report(out: Any, conn: Any, report: Any) -> None:
    from opencode_cloud.hosts.probe import DockerState

    c = conn.host.config
    who = f"{c.user}@" if c.user else ""
    how = (f"new connection in {report.connect_ms:.0f} ms" if report.new_connection
           else "reused the open connection")
    out.success(f"SSH: ok, {who}{c.hostname}{':' + str(c.port) if c.port else ''} ({how})")
    if report.os_name:
        out.line(f"OS: {report.os_name}" + (f" ({report.arch})" if report.arch else ""))
    docker = report.docker
    if docker is not None and docker.state is DockerState.OK:
        out.success(f"Docker: server {docker.version} (API {docker.api_version}); socket "
                    f"{report.docker_socket} usable over SSH, round trip "
                    f"{report.command_ms:.0f} ms")
    elif docker is not None:
        out.line(f"Docker: {docker.state.value}")


# -- remove ------------------------------------------------------------------------------
@host_group.command("remove")
@click.argument("name")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@global_options
def remove(name: str, force: bool) -> None:
    """Remove a host (removing the default host makes this machine the default again)."""
    host = store.resolve_host(name)
    if not force:
        if not click.get_text_stream("stdin").isatty():
            raise ConfigError(f"refusing to remove host '{name}' without confirmation",
                              hint=f"Run 'occ host remove {name} --force'.")
        click.confirm(f"Remove host '{name}' ({_describe(host.config)})?", abort=True)
    _quiet_disconnect(host)
    was_default: list[bool] = []

    def change(hosts: HostsFile) -> HostsFile:
        if name not in hosts.hosts:
            raise store.unknown_host(name, hosts)
        was_default.append(hosts.default_host == name)
        return hosts.without_host(name)

    store.change_hosts(change)
    out = make_printer()
    out.success(f"Removed host '{name}'.")
    if was_default and was_default[-1]:
        out.line("It was the default host: commands now act on this machine.")


def _quiet_disconnect(host: Host) -> None:
    """Close a host's master before its entry changes (the socket name depends on it)."""
    with contextlib.suppress(OccError):
        _connection(host).disconnect()


# -- list --------------------------------------------------------------------------------
@host_group.command("list")
@click.option("-g", "--group", help="Only hosts in this group.")
@click.option("--names-only", is_flag=True, help="Only the names, one a line.")
@click.option("--json", "as_json", is_flag=True, help="Print the hosts as JSON.")
@global_options
def list_(group: str | None, names_only: bool, as_json: bool) -> None:
    """List the hosts."""
    hosts = store.load_hosts()
    names = hosts.names(group)
    if names_only:
        for name in names:
            click.echo(name)
        return
    out = make_printer()
    if as_json:
        out.json({
            "default_host": hosts.default_host,
            "hosts": [{"name": n, "default": n == hosts.default_host, **hosts.hosts[n].to_dict()}
                      for n in names],
        })
        return
    if not names:
        where = f" in group '{group}'" if group else ""
        out.line(f"No hosts{where}. Add one with: occ host add NAME HOSTNAME")
        return
    rows = []
    for n in names:
        c = hosts.hosts[n]
        rows.append([
            n + (" (no Docker)" if c.docker_missing else ""), c.hostname, c.user or "-",
            str(c.port) if c.port else "-", ",".join(c.groups) or "-",
            "*" if n == hosts.default_host else "",
        ])
    out.table(["NAME", "HOSTNAME", "USER", "PORT", "GROUPS", "DEFAULT"], rows)
    if any(c.user is None or c.port is None for c in hosts.hosts.values()):
        out.detail("'-' = from ~/.ssh/config or ssh's default; see: occ host show NAME")


# -- show --------------------------------------------------------------------------------
def effective_values(config: HostConfig, resolved: dict[str, list[str]],
                     baseline: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Each resolved setting with its source: hosts.json, ssh_config or default."""
    rows = []
    for field, option in RESOLVED_FIELDS:
        value = resolved.get(option, [])
        if field == "hostname":  # always in hosts.json, but ssh_config may map it (HostName)
            source = "hosts.json" if value == [config.hostname] else "ssh_config"
        elif getattr(config, field) is not None:
            source = "hosts.json"
        elif value != baseline.get(option, []):
            source = "ssh_config"
        else:
            source = "default"
        shown: Any = value if option == "identityfile" else (value[0] if value else None)
        if option == "port" and shown is not None:
            shown = int(shown)
        if option == "proxyjump" and shown == "none":
            shown = None
        rows.append({"field": field, "value": shown, "source": source})
    return rows


@host_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as one JSON object.")
@global_options
def show(name: str, as_json: bool) -> None:
    """Show a host: its hosts.json entry and the values ssh will really use."""
    hosts = store.load_hosts()
    host = store.resolve_host(name, hosts)
    conn = _connection(host)
    effective = effective_values(host.config, conn.resolved_config(),
                                 conn.resolved_config(baseline=True))
    out = make_printer()
    if as_json:
        out.json({
            "name": name, "default": hosts.default_host == name,
            "config": host.config.to_dict(),
            "effective": {row["field"]: {"value": row["value"], "source": row["source"]}
                          for row in effective},
            "docker_socket": host.config.effective_docker_socket,
            "ssh_config": str(conn.settings.user_config) if conn.settings.user_config else None,
            "known_hosts": str(conn.settings.known_hosts_for_hints),
            "generated_ssh_config": str(conn.target.config_file),
        })
        return
    pairs = [("name", name + ("  (default host)" if hosts.default_host == name else ""))]
    for row in effective:
        value = row["value"]
        if isinstance(value, list):
            value = ", ".join(value) if value else None
        pairs.append((row["field"], f"{value if value is not None else '(none)'}"
                      f"  [{row['source']}]"))
    c = host.config
    pairs += [
        ("groups", ", ".join(c.groups) or "(none)"),
        ("description", c.description or "(none)"),
        ("docker_socket", c.effective_docker_socket
         + ("  [hosts.json]" if c.docker_socket else "  [default]")),
    ]
    if c.docker_missing:
        pairs.append(("docker", f"missing at the last check (occ host install-docker {name})"))
    for key, value in sorted(c.settings.items()):
        pairs.append((f"setting {key}", f"{json.dumps(value)}  [hosts.json, this host only]"))
    out.key_values(pairs)
    out.detail(f"(from {paths.hosts_file()}; ssh config "
               f"{conn.settings.user_config or 'none'}; known hosts "
               f"{conn.settings.known_hosts_for_hints})")


# -- edit --------------------------------------------------------------------------------
@host_group.command("edit")
@click.argument("name")
@click.option("--hostname", help="New hostname or address.")
@click.option("-u", "--user", help="SSH login ('' = from ~/.ssh/config).")
@click.option("-p", "--port", metavar="PORT", help="SSH port ('' = from ~/.ssh/config).")
@click.option("-i", "--identity-file", metavar="FILE", help="Private key ('' = agent/config).")
@click.option("-J", "--jump-host", metavar="[USER@]HOST[:PORT]", help="Jump host(s) ('' = none).")
@click.option("--add-group", multiple=True, metavar="GROUP", help="Add to a group (repeatable).")
@click.option("--remove-group", multiple=True, metavar="GROUP", help="Leave a group (repeatable).")
@click.option("-d", "--description", help="A note ('' = none).")
@click.option("--docker-socket", metavar="PATH", help="Engine socket ('' = /var/run/docker.sock).")
@click.option("--set", "set_", multiple=True, metavar="KEY=VALUE",
              help="Use this config.json value on this host only (repeatable).")
@click.option("--unset", multiple=True, metavar="KEY",
              help="Use config.json's value again on this host (repeatable).")
@global_options
def edit(name: str, hostname: str | None, user: str | None, port: str | None,
         identity_file: str | None, jump_host: str | None, add_group: tuple[str, ...],
         remove_group: tuple[str, ...], description: str | None,
         docker_socket: str | None, set_: tuple[str, ...], unset: tuple[str, ...]) -> None:
    """Change a host's settings; an empty string clears an optional one.

    \b
    Examples:
      occ host edit web1 -p 2222
      occ host edit web1 --set opencode_web_port=3100 --set memory_limit=8g
      occ host edit web1 --unset memory_limit
    """
    updates: dict[str, Any] = {}
    if hostname is not None:
        updates["hostname"] = _check(hostname, v.check_hostname, "'--hostname'")
    optional = (
        ("user", user, lambda s: _check(s, v.check_user, "'-u' / '--user'")),
        ("port", port, _port),
        ("identity_file", identity_file, _identity),
        ("jump_host", jump_host, lambda s: _check(s, v.check_jump_host, "'-J' / '--jump-host'")),
        ("description", description,
         lambda s: _check(s, v.check_description, "'-d' / '--description'")),
        ("docker_socket", docker_socket,
         lambda s: _check(s, v.check_docker_socket, "'--docker-socket'")),
    )
    for field, raw, parse in optional:
        if raw is not None:
            updates[field] = None if raw == "" else parse(raw)
    added = [_check(g, v.check_group, "'--add-group'") for g in add_group]
    removed = [_check(g, v.check_group, "'--remove-group'") for g in remove_group]
    overrides = _settings_changes(set_, unset)
    if not updates and not added and not removed and not overrides:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    old = store.resolve_host(name)
    result: dict[str, HostConfig] = {}

    def change(hosts: HostsFile) -> HostsFile:
        current = hosts.hosts.get(name)
        if current is None:
            raise store.unknown_host(name, hosts)
        groups = [g for g in current.groups if g not in removed]
        groups += [g for g in added if g not in groups]
        fields = dict(updates, groups=groups)
        if overrides:
            settings = {**current.settings, **overrides}
            fields["settings"] = {k: val for k, val in settings.items() if val is not _UNSET}
        if {"hostname", "docker_socket"} & set(updates):
            fields["docker_missing"] = False  # a new place: the old finding no longer holds
        result["config"] = current.changed(**fields)
        return hosts.with_host(name, result["config"])

    try:
        store.change_hosts(change)
    except FieldError as exc:  # a --set value that config.json would refuse too
        raise click.BadParameter(exc.message, param_hint="'--set'") from None
    if result["config"].key_material() != old.config.key_material():
        _quiet_disconnect(old)  # its socket is named after the old settings
    make_printer().success(f"Updated host '{name}' ({_describe(result['config'])}).")


_UNSET = object()


def _settings_changes(assignments: tuple[str, ...], unset: tuple[str, ...]) -> dict[str, Any]:
    """``--set KEY=VALUE`` and ``--unset KEY`` as one mapping (_UNSET marks removals)."""
    from opencode_cloud.config import store as config_store

    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise click.BadParameter(f"'{assignment}' is not KEY=VALUE", param_hint="'--set'")
        try:
            changes[key] = config_store.coerce_value(key, raw)
        except ConfigError as exc:
            raise click.BadParameter(exc.message, param_hint="'--set'") from None
    for key in unset:
        changes[key] = _UNSET
    return changes


# -- test --------------------------------------------------------------------------------
@host_group.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("-y", "--yes", "assume_yes", is_flag=True,
              help="If Docker is missing there, install it without asking.")
@global_options
def test(name: str, as_json: bool, assume_yes: bool) -> None:
    """Check SSH (and its round trip), the OS and Docker on a host.

    The exit status is 0 only if Docker there is usable; with -q nothing but errors
    is printed. If Docker is missing, occ offers to install it in a terminal (or with
    --yes); with --json it only reports.
    """
    from opencode_cloud.hosts.probe import DockerState, probe_host

    host = store.resolve_host(name)
    out = make_printer(host=name)
    with _connection(host, out) as conn:
        report = probe_host(conn)
        if as_json:
            make_printer().json(report.to_json())
        else:
            _print_report(out, conn, report)
        missing = report.problem is not None and report.problem.state is DockerState.MISSING
        if missing != host.config.docker_missing:
            _set_docker_missing(name, host.config, missing)
        if missing and not as_json and (assume_yes or _terminal()):
            from opencode_cloud.install.installer import offer_docker_install

            offer_docker_install(conn, host, out, assume_yes=assume_yes)  # a no raises
            _print_report(out, conn, probe_host(conn))
            return
    if report.problem is not None:
        raise report.problem


# -- install-docker ----------------------------------------------------------------------
@host_group.command("install-docker")
@click.argument("name")
@click.option("-y", "--yes", "assume_yes", is_flag=True,
              help="Do not ask (for scripts). sudo may still ask for its password.")
@global_options
def install_docker(name: str, assume_yes: bool) -> None:
    """Install Docker on a host, or finish a half-done install.

    occ shows the distribution it found and the exact commands, and asks first. It uses
    the distribution's own signed packages (or Docker's signed repository), starts the
    daemon now and at boot, adds your SSH user to the docker group, and checks that the
    Engine answers over SSH. Running it again is safe: it finishes what is left.
    """
    from opencode_cloud.hosts.probe import DockerState, probe_host
    from opencode_cloud.install.installer import offer_docker_install

    host = store.resolve_host(name)
    out = make_printer(host=name)
    with _connection(host, out) as conn:
        report = probe_host(conn)
        docker = report.docker
        if docker is not None and docker.state is DockerState.OK:
            if host.config.docker_missing:
                _set_docker_missing(name, host.config, False)
            out.success(f"Docker {docker.version} already works on {name}; nothing to do.")
            return
        if report.problem is not None and report.problem.state is DockerState.NO_FORWARDING:
            raise report.problem  # installing cannot fix the host's sshd settings
        offer_docker_install(conn, host, out, assume_yes=assume_yes)


def _set_docker_missing(name: str, seen: HostConfig, missing: bool) -> None:
    def change(hosts: HostsFile) -> HostsFile:
        current = hosts.hosts.get(name)
        if current != seen:  # changed meanwhile: leave it alone
            return hosts
        return hosts.with_host(name, current.changed(docker_missing=missing))

    store.change_hosts(change)


# -- default -----------------------------------------------------------------------------
@host_group.command("default")
@click.argument("name", required=False)
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


# -- disconnect --------------------------------------------------------------------------
@host_group.command("disconnect")
@click.argument("name", required=False)
@click.option("--all", "all_hosts", is_flag=True, help="Every host in hosts.json.")
@global_options
def disconnect(name: str | None, all_hosts: bool) -> None:
    """Close the kept-open SSH connection to a host (or to all)."""
    if (name is None) == (not all_hosts):
        raise click.UsageError("give a host NAME or --all")
    hosts = store.load_hosts()
    targets = [hosts.get(n) for n in hosts.names()] if all_hosts \
        else [store.resolve_host(name or "", hosts)]
    closed = 0
    for host in targets:
        assert host is not None
        out = make_printer(host=host.name)
        if _connection(host).disconnect():
            closed += 1
            out.success("connection closed")
        elif not all_hosts:
            out.line("no open connection")
    if all_hosts:
        make_printer().line(f"Closed {closed} connection{'s' if closed != 1 else ''}.")
