"""``occ host edit``: change an entry's fields and its own settings (``--set``)."""

from __future__ import annotations

from typing import Any

import click

from opencode_cloud.cli.commands.host import fields
from opencode_cloud.cli.commands.host.manage import quiet_disconnect
from opencode_cloud.cli.state import LocalOnlyCommand, complete_with, global_options, make_printer
from opencode_cloud.errors import ConfigError
from opencode_cloud.hosts import store
from opencode_cloud.hosts import validation as v
from opencode_cloud.hosts.model import HostConfig, HostsFile


@click.command("edit", cls=LocalOnlyCommand)
@click.argument("name", shell_complete=complete_with("registered_host_names"))
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
    updates = fields.parse_options({
        "hostname": hostname, "user": user, "port": port, "identity_file": identity_file,
        "jump_host": jump_host, "description": description, "docker_socket": docker_socket},
        empty_clears=True)
    removed = [fields.checked(g, v.check_group, "'--remove-group'") for g in remove_group]
    added = list(add_group)  # checked with the whole entry, below
    overrides = _settings_changes(set_, unset)
    if not updates and not added and not removed and not overrides:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    # Loaded keeping invalid entries aside: the bad entry itself can be fixed here, and
    # editing a good one never fails because of another.
    old = store.load_hosts(keep_broken=True).get(name)
    result: dict[str, HostConfig] = {}

    def change(hosts: HostsFile) -> HostsFile:
        current = hosts.hosts.get(name)
        entry = current.to_dict() if current is not None else hosts.broken.get(name)
        if entry is None:
            raise store.unknown_host(name, hosts)
        old_groups = entry.get("groups") if isinstance(entry.get("groups"), list) else []
        groups = [g for g in old_groups if g not in removed]
        groups += [g for g in added if g not in groups]
        values = dict(updates, groups=groups)
        if overrides:
            old_settings = entry.get("settings") if isinstance(entry.get("settings"), dict) \
                else {}
            settings = {**old_settings, **overrides}
            values["settings"] = {k: val for k, val in settings.items() if val is not _UNSET}
        if {"hostname", "docker_socket"} & set(updates):
            values["docker_missing"] = False  # a new place: the old finding no longer holds
        result["config"] = fields.build(lambda: HostConfig.from_dict({**entry, **values}),
                                        EDIT_OPTIONS)
        return hosts.with_host(name, result["config"])

    store.change_hosts(change, keep_broken=True)
    if old is not None and result["config"].key_material() != old.config.key_material():
        quiet_disconnect(old)  # its socket is named after the old settings
    make_printer().success(f"Updated host '{name}' ({fields.describe(result['config'])}).")


_UNSET = object()
# Where edit's values come from, for errors (the rest as for add).
EDIT_OPTIONS = {"hostname": "'--hostname'", "groups": "'--add-group'"}


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


COMMANDS = [edit]
