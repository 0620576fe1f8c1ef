"""Checks for every value that ends up on an ``ssh`` command line or in a generated ssh config.

Pure functions: each takes the raw value and returns it (normalised) or raises
``ValueError`` with a message that says what is allowed. The same checks run on
command-line input and on a hand-edited hosts.json (through hosts.model), so a
value such as ``-oProxyCommand=…`` can never reach ssh from either side.

The rules are deliberately narrower than what ssh accepts: nothing may start with ``-``
(ssh would read it as an option), and no whitespace, control characters, quotes or
shell metacharacters anywhere (a value may be quoted into a config file or a remote
shell command, and a narrow alphabet makes that safe without relying on the quoting).
"""

from __future__ import annotations

import ipaddress
import re

NAME_MAX = 63
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
RESERVED_NAMES = frozenset({"local"})  # `--host local` / `host default local` mean this machine

# A DNS label; underscores are allowed because ssh_config aliases often use them.
LABEL_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
# Paths: letters, digits and a few punctuation marks; ``~`` only as the first character.
PATH_RE = re.compile(r"^(?:~/|/)[A-Za-z0-9._/+@,=:-]*$")
SOCKET_RE = re.compile(r"^/[A-Za-z0-9._/+@,=-]*$")
DESCRIPTION_MAX = 200


def _is_control(ch: str) -> bool:
    return ord(ch) < 32 or 127 <= ord(ch) < 160  # C0, DEL and C1 (U+0080-U+009F, e.g. CSI)


def _common(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if value == "":
        raise ValueError(f"{what} must not be empty")
    if value.startswith("-"):
        raise ValueError(f"{what} must not start with '-' (ssh would read it as an option)")
    if any(ch.isspace() or _is_control(ch) for ch in value):
        raise ValueError(f"{what} must not contain spaces or control characters")
    return value


def check_name(value: object, what: str = "host name") -> str:
    """A host name (the key in hosts.json) or a group name."""
    value = _common(value, what)
    if len(value) > NAME_MAX or not NAME_RE.match(value):
        raise ValueError(
            f"{what} may use only letters, digits, '.', '_' and '-', must start with a "
            f"letter or digit and have at most {NAME_MAX} characters"
        )
    return value


def check_host_name(value: object) -> str:
    value = check_name(value, "host name")
    if value.lower() in RESERVED_NAMES:
        raise ValueError(f"'{value}' is reserved: it means this machine (use another name)")
    return value


def check_group(value: object) -> str:
    return check_name(value, "group name")


def check_hostname(value: object, what: str = "hostname") -> str:
    """A DNS name (or ssh_config alias), an IPv4 address or an IPv6 address (no brackets)."""
    value = _common(value, what)
    if ":" in value:
        try:
            if not set(value) <= set("0123456789abcdefABCDEF:."):
                raise ValueError  # no zone ids ("%eth0": '%' is an ssh token)
            ipaddress.IPv6Address(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not a valid IPv6 address") from None
        return value
    if len(value) > 253:
        raise ValueError(f"{what} is longer than 253 characters")
    labels = value[:-1].split(".") if value.endswith(".") else value.split(".")
    if not all(LABEL_RE.match(label) for label in labels):
        raise ValueError(
            f"{what} {value!r} must be a DNS name, an ssh_config host alias or an IP address "
            "(letters, digits, '-', '_' and '.')"
        )
    return value


def check_user(value: object) -> str:
    value = _common(value, "user")
    if not USER_RE.match(value):
        raise ValueError(
            "user must be a plain login name: letters, digits, '_', '.' and '-', "
            "at most 32 characters"
        )
    return value


def check_port(value: object, what: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number from 1 to 65535")
    if not 1 <= value <= 65535:
        raise ValueError(f"{what} must be from 1 to 65535 (got {value})")
    return value


def parse_port(text: str, what: str = "port") -> int:
    """A port typed as text (a jump spec, a CLI option)."""
    if not (text.isascii() and text.isdigit()):  # int() would also read '١٢' as 12
        raise ValueError(f"{what} must be a whole number from 1 to 65535 (got {text!r})")
    return check_port(int(text), what)


def split_jump_hop(hop: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (IPv6 as ``[addr]`` or ``[addr]:port``) -> (user, host, port)."""
    user: str | None = None
    rest = hop
    if "@" in hop:
        user, _, rest = hop.rpartition("@")
        user = check_user(user)
    port: int | None = None
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep:
            raise ValueError(f"jump host {hop!r}: missing ']' after the IPv6 address")
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"jump host {hop!r}: expected ':PORT' after ']'")
            port = parse_port(tail[1:], f"jump host {hop!r}: port")
        if ":" not in host:
            raise ValueError(f"jump host {hop!r}: brackets are only for IPv6 addresses")
        check_hostname(host, "jump host")
        return user, host, port
    if rest.count(":") == 1:
        rest, _, port_text = rest.partition(":")
        port = parse_port(port_text, f"jump host {hop!r}: port")
    elif rest.count(":") > 1:
        raise ValueError(f"jump host {hop!r}: write an IPv6 address as [ADDRESS]:PORT")
    check_hostname(rest, "jump host")
    return user, rest, port


def check_jump_host(value: object) -> str:
    """A ProxyJump chain: ``[user@]host[:port]`` hops separated by commas."""
    value = _common(value, "jump host")
    hops = value.split(",")
    if len(hops) > 8:
        raise ValueError("jump host: at most 8 hops")
    for hop in hops:
        if not hop:
            raise ValueError("jump host: empty hop (two commas, or a comma at an end)")
        if hop.startswith("-"):
            raise ValueError(f"jump host {hop!r} must not start with '-'")
        split_jump_hop(hop)
    return value


def check_identity_file(value: object) -> str:
    value = _common(value, "identity file")
    if not PATH_RE.match(value) or "~" in value[1:]:
        raise ValueError(
            "identity file must be an absolute path or start with ~/, and use only letters, "
            "digits and . _ / + @ , = : - (no spaces, quotes, $, % or shell characters)"
        )
    return value


def check_docker_socket(value: object) -> str:
    value = _common(value, "docker socket")
    if not SOCKET_RE.match(value) or "/../" in value + "/":
        raise ValueError(
            "docker socket must be an absolute path such as /var/run/docker.sock "
            "(letters, digits and . _ / + @ , = -)"
        )
    return value


def check_description(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("description must be a string")
    if len(value) > DESCRIPTION_MAX:
        raise ValueError(f"description must have at most {DESCRIPTION_MAX} characters")
    if any(_is_control(ch) or "\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("description must not contain control characters (newlines, tabs) "
                         "or unpaired surrogates")
    return value
