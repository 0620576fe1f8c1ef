"""``occ host list`` and ``occ host show``: the entries, and what ssh will really use."""

from __future__ import annotations

import json
from typing import Any

import click

from opencode_cloud.cli.state import LocalOnlyCommand, complete_with, global_options, make_printer
from opencode_cloud.config import paths
from opencode_cloud.config.masking import mask_settings
from opencode_cloud.hosts import store
from opencode_cloud.hosts.model import HostConfig

# The fields `host show` resolves through `ssh -G`: hosts.json field -> ssh -G name.
RESOLVED_FIELDS = (("hostname", "hostname"), ("user", "user"), ("port", "port"),
                   ("identity_file", "identityfile"), ("jump_host", "proxyjump"))


@click.command("list", cls=LocalOnlyCommand)
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
            "hosts": [{"name": n, "default": n == hosts.default_host,
                       **_masked(hosts.hosts[n].to_dict())} for n in names],
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


def _masked(entry: dict[str, Any]) -> dict[str, Any]:
    """A host's to_dict() with the secret values of its own settings masked."""
    return {**entry, "settings": mask_settings(entry["settings"])}


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


@click.command("show", cls=LocalOnlyCommand)
@click.argument("name", shell_complete=complete_with("registered_host_names"))
@click.option("--json", "as_json", is_flag=True, help="Print as one JSON object.")
@click.option("--show-secrets", is_flag=True,
              help="Print secret values of its settings (container_env) in clear.")
@global_options
def show(name: str, as_json: bool, show_secrets: bool) -> None:
    """Show a host: its hosts.json entry and the values ssh will really use (secrets
    masked)."""
    hosts = store.load_hosts()
    from opencode_cloud.ssh.connection import HostConnection

    host = store.resolve_host(name, hosts)
    conn = HostConnection(host)
    effective = effective_values(host.config, conn.resolved_config(),
                                 conn.resolved_config(baseline=True))
    out = make_printer()
    if as_json:
        out.json({
            "name": name, "default": hosts.default_host == name,
            "config": host.config.to_dict() if show_secrets else _masked(host.config.to_dict()),
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
    settings = c.settings if show_secrets else mask_settings(c.settings)
    for key, value in sorted(settings.items()):
        shown = json.dumps(value, ensure_ascii=False)
        pairs.append((f"setting {key}", f"{shown}  [hosts.json, this host only]"))
    out.key_values(pairs)
    out.detail(f"(from {paths.hosts_file()}; ssh config "
               f"{conn.settings.user_config or 'none'}; known hosts "
               f"{conn.settings.known_hosts_for_hints})")


COMMANDS = [list_, show]
