"""Sharing the host registry with a team: what an export leaves out, how an import merges.

Pure functions over :class:`HostsFile` values; ``occ host export`` / ``occ host import``
(cli/commands/host/share.py) read and write the files.

An exported file is a hosts.json (same format, same checks on the way back in). What is
this machine's own rather than the team's configuration:

- ``identity_file``: the path of a private key on this machine;
- the ``extra_ca_certs`` setting: the path of a CA bundle on this machine (occ reads it
  here and sends it with the image build);
- ``docker_missing``: what this machine's last check of the host found, not configuration.

The first two are exported only when asked (``--with-identity-files``: this machine's
private paths); ``docker_missing`` never is. Everything else is kept, per-host settings
included (they are config values), also ``container_env``, which may hold API keys: the
exporter is told so.

An import is validated by :func:`hosts.store.parse_hosts`, the checks every hand edit of
hosts.json passes, after one check that parser cannot make: a name or field given twice
(``json.loads`` would silently keep the last one).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencode_cloud.errors import ConfigError
from opencode_cloud.hosts.model import HostConfig, HostsFile
from opencode_cloud.hosts.store import parse_hosts

# Settings that name a path on this machine (left out like identity files).
LOCAL_PATH_SETTINGS = ("extra_ca_certs", "image_dockerfile")
# Settings worth a look before a file is shared (they may carry secrets).
SECRET_SETTINGS = ("container_env",)
MAX_IMPORT_BYTES = 4 * 1024 * 1024  # a registry of thousands of hosts is far smaller

REFUSE, REPLACE, SKIP = "refuse", "replace", "skip"


def is_local_path(value: object) -> bool:
    """A setting value naming a file here ("auto" and "none" for extra_ca_certs do not)."""
    return isinstance(value, str) and value not in ("", "auto", "none")


# -- export -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Export:
    hosts: HostsFile
    # what was left out -> the hosts it was left out of ("identity_file", "extra_ca_certs")
    left_out: dict[str, list[str]] = field(default_factory=dict)
    # setting -> hosts whose exported settings carry it (SECRET_SETTINGS)
    secrets: dict[str, list[str]] = field(default_factory=dict)

    def text(self) -> str:
        return json.dumps(self.hosts.to_json(), indent=2) + "\n"


def export_hosts(hosts: HostsFile, names: list[str], *, with_local_paths: bool) -> Export:
    """The entries ``names`` as a shareable file: ``docker_missing`` always left out, this
    machine's paths unless ``with_local_paths``; the default host only if it is exported."""
    exported: dict[str, HostConfig] = {}
    left_out: dict[str, list[str]] = {}
    secrets: dict[str, list[str]] = {}
    for name in sorted(names):
        config = dataclasses.replace(hosts.hosts[name], docker_missing=False)
        if not with_local_paths:
            if config.identity_file is not None:
                left_out.setdefault("identity_file", []).append(name)
                config = dataclasses.replace(config, identity_file=None)
            for key in LOCAL_PATH_SETTINGS:
                if key in config.settings and is_local_path(config.settings[key]):
                    left_out.setdefault(key, []).append(name)
                    settings = {k: val for k, val in config.settings.items() if k != key}
                    config = dataclasses.replace(config, settings=settings)
        for key in SECRET_SETTINGS:
            if config.settings.get(key):
                secrets.setdefault(key, []).append(name)
        exported[name] = config
    default = hosts.default_host if hosts.default_host in exported else None
    return Export(HostsFile(exported, default), left_out, secrets)


# -- import -------------------------------------------------------------------------------
class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _nested_duplicate(value: Any) -> str | None:
    if isinstance(value, _Object):
        if value.duplicates:
            return value.duplicates[0]
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _nested_duplicate(child)
        if found is not None:
            return found
    return None


def find_duplicate(data: Any) -> str | None:
    """Where ``data`` (parsed with :func:`_object`) holds a key twice, in words, or None."""
    if not isinstance(data, _Object):
        return None
    if data.duplicates:
        return f"the top-level field '{data.duplicates[0]}' appears twice"
    hosts = data.get("hosts")
    if isinstance(hosts, _Object):
        if hosts.duplicates:
            return f"host '{hosts.duplicates[0]}' appears twice"
        for name, entry in hosts.items():
            if isinstance(entry, _Object) and entry.duplicates:
                return f"host '{name}', field '{entry.duplicates[0]}' appears twice"
            if isinstance(entry, _Object):
                for key, value in entry.items():
                    found = _nested_duplicate(value)
                    if found is not None:
                        return f"host '{name}', field '{key}': '{found}' appears twice"
    found = _nested_duplicate(data)
    return None if found is None else f"the key '{found}' appears twice"


def _load_pairs(text: str) -> Any:
    """The document with duplicate-aware objects; None when it is not JSON (or JSONC)."""
    try:
        return json.loads(text, object_pairs_hook=_object)
    except ValueError:
        pass
    import json5  # comments and trailing commas, as parse_hosts accepts them

    try:
        return json5.loads(text, object_pairs_hook=_object)
    except ValueError:
        return None  # parse_hosts says why


def _import_hint(hint: str | None, source: Path) -> str:
    # parse_hosts speaks of hosts.json: its "occ host edit" and "move it away" do not apply
    if hint and "Nothing was imported" in hint:
        return hint
    if not hint or "occ host edit" in hint or "move it away" in hint:
        hint = f"Correct it in {source}."
    return f"{hint} Nothing was imported; hosts.json is unchanged."


def read_import(text: str, source: Path) -> HostsFile:
    """Validate an import file whole: exactly the checks of hosts.json (parse_hosts), and
    no name or field given twice. Raises ConfigError naming the entry and the field."""
    try:
        data = _load_pairs(text)
        where = find_duplicate(data)
        if where is not None:
            raise ConfigError(f"{source}: {where}",
                              hint=_import_hint("JSON would keep only the last one: remove "
                                                f"or rename the others in {source}.", source))
        incoming = parse_hosts(text, source)
    except RecursionError:
        raise ConfigError(f"{source}: the JSON is nested too deeply",
                          hint=_import_hint(None, source)) from None
    except ConfigError as exc:
        raise ConfigError(exc.message, hint=_import_hint(exc.hint, source)) from None
    if not incoming.hosts:
        raise ConfigError(f"{source} holds no hosts",
                          hint="Nothing was imported. Make a file with: occ host export -o "
                          "FILE (on a machine that has hosts).")
    return incoming


@dataclass(frozen=True)
class ImportPlan:
    hosts: HostsFile  # the registry after the import
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # existing, with other values, kept
    unchanged: list[str] = field(default_factory=list)  # existing with the same values
    kept_local: dict[str, list[str]] = field(default_factory=dict)  # replaced -> kept fields

    @property
    def changes(self) -> bool:
        return bool(self.added or self.replaced)


def merge_local(incoming: HostConfig, current: HostConfig) -> tuple[HostConfig, list[str]]:
    """``incoming`` with this machine's paths of ``current`` where the file has none (an
    export leaves them out, so a refresh must not wipe them), and this machine's finding
    that Docker is missing while the host's place (hostname, socket) stays the same, as
    ``occ host edit`` keeps it."""
    kept: list[str] = []
    if incoming.identity_file is None and current.identity_file is not None:
        incoming = dataclasses.replace(incoming, identity_file=current.identity_file)
        kept.append("identity_file")
    for key in LOCAL_PATH_SETTINGS:
        if key not in incoming.settings and key in current.settings:
            settings = {**incoming.settings, key: current.settings[key]}
            incoming = dataclasses.replace(incoming, settings=settings)
            kept.append(key)
    same_place = (incoming.hostname, incoming.docker_socket) == (current.hostname,
                                                                  current.docker_socket)
    if same_place and current.docker_missing and not incoming.docker_missing:
        incoming = dataclasses.replace(incoming, docker_missing=True)  # still holds there
    return incoming, kept


def plan_import(current: HostsFile, incoming: HostsFile, *, on_conflict: str,
                source: Path, docker_missing: dict[str, bool] | None = None) -> ImportPlan:
    """What importing ``incoming`` into ``current`` does. A name that exists is refused
    (``REFUSE``: ConfigError naming it, nothing changes), replaced (``REPLACE``: the file's
    entry, keeping this machine's paths the file lacks) or kept (``SKIP``). The default
    host of this machine never changes. ``docker_missing``: what a check just found, by
    host name (it wins over the file and over this machine's older finding)."""
    found = docker_missing or {}
    existing = sorted(n for n in incoming.hosts if n in current.hosts)
    if existing and on_conflict == REFUSE:
        more = f" (and {len(existing) - 1} more: {', '.join(existing[1:])})" \
            if len(existing) > 1 else ""
        raise ConfigError(
            f"{source}: host '{existing[0]}' already exists in hosts.json{more}",
            hint="Nothing was imported; hosts.json is unchanged. Add --skip-existing to keep "
            "yours, or --replace to take the file's (your identity files stay).",
        )
    result = current
    plan = ImportPlan(result)
    for name in sorted(incoming.hosts):
        config = incoming.hosts[name]
        old = current.hosts.get(name)
        if old is None:
            if name in found:
                config = dataclasses.replace(config, docker_missing=found[name])
            plan.added.append(name)
            result = result.with_host(name, config)
            continue
        merged, kept = merge_local(config, old)
        if name in found:
            merged = dataclasses.replace(merged, docker_missing=found[name])
        if merged == old:
            plan.unchanged.append(name)
        elif on_conflict == SKIP:
            plan.skipped.append(name)
        else:
            plan.replaced.append(name)
            if kept:
                plan.kept_local[name] = kept
            result = result.with_host(name, merged)
    return dataclasses.replace(plan, hosts=result)
