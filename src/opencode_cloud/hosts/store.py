"""Load, validate and change hosts.json (next to config.json).

Every load validates the whole file: a bad entry is an error naming the host, the field
and the fix, never a silent fallback. Every change is a read-modify-write under the
foundation's lock (:func:`storage.safe_file.update_text`), so concurrent ``occ host add``
processes never lose each other's hosts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opencode_cloud.config import paths
from opencode_cloud.config.jsonc import parse_jsonc
from opencode_cloud.errors import ConfigError, OccError
from opencode_cloud.hosts import validation as v
from opencode_cloud.hosts.model import (
    ALL_FIELDS,
    FILE_VERSION,
    FieldError,
    Host,
    HostConfig,
    HostsFile,
)

LOCAL = "local"


class UnknownHostError(OccError):
    """A host name that hosts.json does not hold."""


def _fix_hint(source: Path, name: str | None, field: str | None) -> str:
    edit_flags = {"hostname": "--hostname", "user": "-u", "port": "-p",
                  "identity_file": "-i", "jump_host": "-J", "description": "-d"}
    if name and field in edit_flags:
        return (f"Correct it in {source}, or set it with: occ host edit {name} "
                f"{edit_flags[field]} VALUE (an empty VALUE clears it), or drop the host: "
                f"occ host remove {name}.")
    if name:
        return f"Correct it by hand in {source}, or drop the host: occ host remove {name}."
    return f"Correct it by hand in {source}."


def _entry_error(exc: FieldError, source: Path, name: str) -> ConfigError:
    if exc.kind == "unknown":
        known = ", ".join(ALL_FIELDS)
        return ConfigError(
            f"{source}: host '{name}' has an unknown field '{exc.field}'",
            hint=f"Remove it or fix its spelling in {source}. Known fields: {known}.",
        )
    if exc.kind == "missing":
        return ConfigError(
            f"{source}: host '{name}' has no '{exc.field}'",
            hint=f"Add \"{exc.field}\" to host '{name}' in {source}.",
        )
    return ConfigError(
        f"{source}: host '{name}', field '{exc.field}' is invalid: {exc.message} "
        f"(got {exc.got!r})",
        hint=_fix_hint(source, name, exc.field),
    )


def _parse_json(text: str, source: Path) -> Any:
    """Plain JSON (fast, what occ writes); JSON with comments only if a person added some."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return parse_jsonc(text, source)


def parse_hosts(text: str, source: Path, *, keep_broken: bool = False) -> HostsFile:
    """Validate the text of a hosts.json; raise ConfigError naming host, field and fix.

    ``keep_broken``: an entry whose fields are invalid is kept aside as written
    (``HostsFile.broken``) instead of failing the whole file, for ``host edit``/``remove``.
    """
    data = _parse_json(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object", hint=_fix_hint(source, None, None))
    unknown = sorted(set(data) - {"version", "default_host", "hosts"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level field '{unknown[0]}'",
            hint=f"Remove it. The file holds only version, default_host and hosts ({source}).",
        )
    version = data.get("version", FILE_VERSION)
    if version != FILE_VERSION or isinstance(version, bool):
        raise ConfigError(
            f"{source}: version {version!r} is not supported (this occ reads version 1)",
            hint="It may have been written by a newer occ; upgrade occ, or fix the file.",
        )
    raw_hosts = data.get("hosts", {})
    if raw_hosts is None:
        raw_hosts = {}
    if not isinstance(raw_hosts, dict):
        raise ConfigError(f"{source}: 'hosts' must be an object of NAME: {{...}} entries",
                          hint=_fix_hint(source, None, None))
    hosts: dict[str, HostConfig] = {}
    broken: dict[str, dict[str, Any]] = {}
    for name, entry in raw_hosts.items():
        try:
            v.check_host_name(name)
        except ValueError as exc:
            raise ConfigError(f"{source}: host '{name}': {exc}",
                              hint=f"Rename the host in {source}.") from None
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: host '{name}' must be an object with a hostname",
                              hint=_fix_hint(source, name, None))
        try:
            hosts[name] = HostConfig.from_dict(entry)
        except FieldError as exc:
            if not keep_broken:
                raise _entry_error(exc, source, name) from None
            broken[name] = entry
    default = data.get("default_host")
    if default is not None and (not isinstance(default, str)
                                or default not in hosts and default not in broken):
        choices = ", ".join(sorted(hosts)) or "none defined"
        raise ConfigError(
            f"{source}: default_host {default!r} is not a host in this file",
            hint=f"Set \"default_host\" to null or to one of: {choices} (in {source}).",
        )
    return HostsFile(hosts, default, broken=broken)


def render_hosts(hosts: HostsFile) -> str:
    return json.dumps(hosts.to_json(), indent=2) + "\n"


def load_hosts(path: Path | None = None, *, keep_broken: bool = False) -> HostsFile:
    """The validated hosts.json; an empty registry when the file does not exist yet."""
    path = path or paths.hosts_file()
    try:  # a plain read (an atomic rename never shows a half-written file)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return HostsFile({})
    return parse_hosts(text, path, keep_broken=keep_broken)


def change_hosts(change: Callable[[HostsFile], HostsFile], path: Path | None = None, *,
                 keep_broken: bool = False) -> HostsFile:
    """Apply ``change(hosts) -> hosts`` under the lock; nothing is written if it raises.
    ``keep_broken``: see :func:`parse_hosts`."""
    from opencode_cloud.storage import safe_file

    path = path or paths.hosts_file()
    return safe_file.update_document(
        path, lambda text: parse_hosts(text, path, keep_broken=keep_broken),
        lambda: HostsFile({}), render_hosts, change)


def unknown_host(name: str, hosts: HostsFile) -> UnknownHostError:
    known = ", ".join(hosts.names()) or "none yet"
    return UnknownHostError(
        f"no host named '{name}' in hosts.json",
        hint=f"Known hosts: {known}. Add one with: occ host add {name} HOSTNAME",
    )


def resolve_host(name: str, hosts: HostsFile | None = None) -> Host:
    """The host called ``name``, or an error listing the known ones."""
    hosts = hosts if hosts is not None else load_hosts()
    host = hosts.get(name)
    if host is None:
        raise unknown_host(name, hosts)
    return host


def resolve_target(host_option: str | None, local: bool,
                   hosts: HostsFile | None = None) -> Host | None:
    """Which machine a command acts on: ``None`` = this machine, else a remote host.

    ``--local`` or ``--host local`` win; then ``--host NAME``; then hosts.json's default.
    """
    if local or host_option == LOCAL:
        return None
    hosts = hosts if hosts is not None else load_hosts()
    if host_option is not None:
        return resolve_host(host_option, hosts)
    if hosts.default_host is not None:
        return resolve_host(hosts.default_host, hosts)
    return None


def select_hosts(groups: tuple[str, ...] | list[str], all_hosts: bool,
                 hosts: HostsFile | None = None) -> list[Host]:
    """The hosts of ``--group G`` (the union of every group given) or of ``--all`` (every
    host in hosts.json; this machine is never one of them), in name order."""
    hosts = hosts if hosts is not None else load_hosts()
    if not hosts.hosts:
        raise OccError("there are no hosts in hosts.json yet",
                       hint="Add one with: occ host add NAME HOSTNAME [-g GROUP]")
    if all_hosts:
        return [h for n in hosts.names() if (h := hosts.get(n)) is not None]
    known = sorted({g for c in hosts.hosts.values() for g in c.groups})
    missing = [g for g in groups if g not in known]
    if missing:
        listed = ", ".join(known) if known else "none yet (occ host edit NAME --add-group G)"
        raise OccError(f"no host is in group '{missing[0]}'",
                       hint=f"Groups in hosts.json: {listed}.")
    names = sorted({n for n, c in hosts.hosts.items() if set(c.groups) & set(groups)})
    return [h for n in names if (h := hosts.get(n)) is not None]
