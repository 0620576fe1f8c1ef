"""The hosts.json schema, compatible with the original occ's file.

::

    {"version": 1, "default_host": null | NAME,
     "hosts": {NAME: {"hostname", "user", "port", "identity_file", "jump_host",
                      "groups": [], "description"}}}

The original occ rejects unknown fields, so the extra optional fields of this occ
(``docker_socket``, ``docker_missing``) are written only when they are set, and ``user`` is
left out when it is not set (the original would fill in the local login name; here ssh
resolves it from ~/.ssh/config). Every field runs through :mod:`hosts.validation`.

Plain frozen dataclasses rather than pydantic models: the checks are the functions of
``validation`` either way, and importing pydantic costs about 100 ms, which every
``occ host …`` and every remote command would pay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opencode_cloud.config.masking import mask_settings
from opencode_cloud.hosts import validation as v

DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
FILE_VERSION = 1

# Fields in the original occ's order, then this occ's optional extras.
ORIGINAL_FIELDS = ("hostname", "user", "port", "identity_file", "jump_host", "groups",
                   "description")
EXTRA_FIELDS = ("docker_socket", "docker_missing", "settings")
ALL_FIELDS = ORIGINAL_FIELDS + EXTRA_FIELDS


class FieldError(ValueError):
    """A bad value in one field of a host entry (or an unknown or missing field)."""

    def __init__(self, field: str, message: str, got: Any = None, kind: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.message = message
        self.got = got
        self.kind = kind  # invalid | unknown | missing


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _groups(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError("groups must be a list of group names")
    seen: list[str] = []
    for group in value:
        v.check_group(group)
        if group not in seen:
            seen.append(group)
    return tuple(seen)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _settings(value: Any) -> dict[str, Any]:
    """Per-host overrides of config.json keys, checked like config.json itself."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("settings must be an object of config.json keys and values")
    from opencode_cloud.config.store import check_overrides

    check_overrides(value)
    return dict(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "hostname": v.check_hostname,
    "user": _optional(v.check_user),
    "port": _optional(v.check_port),
    "identity_file": _optional(v.check_identity_file),
    "jump_host": _optional(v.check_jump_host),
    "groups": _groups,
    "description": _optional(v.check_description),
    "docker_socket": _optional(v.check_docker_socket),
    "docker_missing": _bool,
    "settings": _settings,
}


@dataclass(frozen=True)
class HostConfig:
    """One entry of hosts.json. ``None`` means: let ssh resolve it (ssh_config or default).

    Build it with :meth:`from_dict` (validates); the constructor trusts its arguments.
    """

    hostname: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    jump_host: str | None = None
    groups: tuple[str, ...] = ()
    description: str | None = None
    docker_socket: str | None = None
    docker_missing: bool = False
    # config.json keys whose value differs on this host (a port, a memory limit, ...).
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostConfig:
        """Validate a JSON object; raises FieldError naming the first bad field."""
        for key in data:
            if key not in _CHECKS:
                raise FieldError(key, "unknown field", kind="unknown")
        if "hostname" not in data:
            raise FieldError("hostname", "missing", kind="missing")
        values: dict[str, Any] = {}
        for key, check in _CHECKS.items():
            if key not in data:
                continue
            try:
                values[key] = check(data[key])
            except ValueError as exc:
                got = mask_settings(data[key]) if key == "settings" else data[key]
                raise FieldError(key, str(exc), got) from None
        return cls(**values)

    @property
    def effective_docker_socket(self) -> str:
        return self.docker_socket or DEFAULT_DOCKER_SOCKET

    def to_dict(self) -> dict[str, Any]:
        """Every field (for --json output)."""
        data = dataclasses.asdict(self)
        data["groups"] = list(self.groups)
        data["settings"] = dict(self.settings)
        return data

    def to_json(self) -> dict[str, Any]:
        """The hosts.json entry: the original occ's fields, extras only when set."""
        data: dict[str, Any] = {}
        for name in ORIGINAL_FIELDS:
            value = getattr(self, name)
            if name == "user" and value is None:
                continue  # the original occ requires a string here; absent = its default
            data[name] = list(value) if name == "groups" else value
        if self.docker_socket is not None:
            data["docker_socket"] = self.docker_socket
        if self.docker_missing:
            data["docker_missing"] = True
        if self.settings:
            data["settings"] = dict(self.settings)
        return data

    def changed(self, **updates: Any) -> HostConfig:
        """A validated copy with ``updates`` applied (``None`` clears an optional field)."""
        return HostConfig.from_dict({**self.to_dict(), **updates})

    def key_material(self) -> str:
        """The fields that shape the connection (it names the master, see ssh.config):
        a new description or group keeps the open connection, a new port does not."""
        return repr((self.hostname, self.user, self.port, self.identity_file,
                     self.jump_host, self.docker_socket))


@dataclass(frozen=True)
class Host:
    """A host from hosts.json together with its name: what the SSH layer works with."""

    name: str
    config: HostConfig

    @property
    def hostname(self) -> str:
        return self.config.hostname


@dataclass(frozen=True)
class HostsFile:
    """The whole file. Immutable: changes return a new value (see :mod:`hosts.store`)."""

    hosts: dict[str, HostConfig] = field(default_factory=dict)
    default_host: str | None = None
    version: int = FILE_VERSION
    # Entries that failed validation, kept as written: only ``host edit``/``host remove``
    # load a file this way, so that one bad entry can be fixed or removed with occ and
    # the others are written back untouched.
    broken: dict[str, dict[str, Any]] = field(default_factory=dict)

    def names(self, group: str | None = None) -> list[str]:
        return sorted(n for n, c in self.hosts.items() if group is None or group in c.groups)

    def get(self, name: str) -> Host | None:
        config = self.hosts.get(name)
        return None if config is None else Host(name, config)

    def _broken_without(self, name: str) -> dict[str, dict[str, Any]]:
        return {n: raw for n, raw in self.broken.items() if n != name}

    def with_host(self, name: str, config: HostConfig) -> HostsFile:
        return HostsFile({**self.hosts, name: config}, self.default_host, self.version,
                         self._broken_without(name))

    def without_host(self, name: str) -> HostsFile:
        hosts = {n: c for n, c in self.hosts.items() if n != name}
        default = None if self.default_host == name else self.default_host
        return HostsFile(hosts, default, self.version, self._broken_without(name))

    def with_default(self, name: str | None) -> HostsFile:
        return HostsFile(dict(self.hosts), name, self.version, dict(self.broken))

    def to_json(self) -> dict[str, Any]:
        entries = {name: config.to_json() for name, config in self.hosts.items()}
        entries.update(self.broken)  # written back exactly as they were
        return {
            "version": self.version,
            "default_host": self.default_host,
            "hosts": {name: entries[name] for name in sorted(entries)},
        }
