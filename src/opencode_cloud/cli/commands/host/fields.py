"""Host entries from command-line options: parsed, then validated once by the model.

``HostConfig.from_dict`` runs every check of :mod:`hosts.validation`; a bad value becomes a
usage error naming the option it came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from opencode_cloud.hosts import validation as v
from opencode_cloud.hosts.model import FieldError, HostConfig

# hosts.json field -> the option that sets it (for error messages)
OPTION_OF = {
    "hostname": "HOSTNAME", "user": "'-u' / '--user'", "port": "'-p' / '--port'",
    "identity_file": "'-i' / '--identity-file'", "jump_host": "'-J' / '--jump-host'",
    "groups": "'-g' / '--group'", "description": "'-d' / '--description'",
    "docker_socket": "'--docker-socket'", "settings": "'--set'",
}


def checked(value: Any, check: Callable[[Any], Any], param: str) -> Any:
    """Run one check on CLI input; a bad value is a usage error naming the option."""
    try:
        return check(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param) from None


def port(text: str, param: str = "'-p' / '--port'") -> int:
    return checked(text, v.parse_port, param)


def identity(path: str) -> str:
    """Keep ``~/…`` as typed (portable between machines); make a relative path absolute."""
    if not path.startswith("~") and not os.path.isabs(path):
        path = os.path.abspath(path)
    return path


def parse_options(raw: dict[str, str | None], *, empty_clears: bool) -> dict[str, Any]:
    """Typed values of the options that were given. ``empty_clears`` (``host edit``): an
    empty string clears the field (None); otherwise it is a value, checked like any other."""
    values: dict[str, Any] = {}
    for field, text in raw.items():
        if text is None:
            continue
        if text == "" and empty_clears and field != "hostname":
            values[field] = None
        elif field == "port":
            values[field] = port(text)
        elif field == "identity_file":
            values[field] = identity(text)
        else:
            values[field] = text
    return values


def build(make: Callable[[], HostConfig], options: dict[str, str] | None = None
          ) -> HostConfig:
    """``make()`` (a from_dict or changed call) with FieldErrors as usage errors naming the
    option (``options`` overrides :data:`OPTION_OF` for a command's own option names)."""
    try:
        return make()
    except FieldError as exc:
        param = {**OPTION_OF, **(options or {})}.get(exc.field)
        raise click.BadParameter(exc.message, param_hint=param) from None


def describe(config: HostConfig) -> str:
    user = f"{config.user}@" if config.user else ""
    port_text = f":{config.port}" if config.port else ""
    jump = f" via {config.jump_host}" if config.jump_host else ""
    return f"{user}{config.hostname}{port_text}{jump}"
