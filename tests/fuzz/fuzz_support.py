"""Shared parts of the property-based fuzz tests: value strategies, the safety oracle and
the tally of documents tried, rejected and accepted (printed at the end of the run).

The valid strategies are built from the rules as the README and ``hosts.validation``
state them; the oracle (``unsafe_*``) is written independently of the code under test, so
a value the validation lets through by mistake is caught rather than mirrored.
"""

from __future__ import annotations

import json
import string
import unicodedata
from collections import Counter
from typing import Any

from hypothesis import strategies as st

# -- the tally ------------------------------------------------------------------------------
TALLY: Counter[str] = Counter()


def record(kind: str, accepted: bool) -> None:
    TALLY[f"{kind} tried"] += 1
    TALLY[f"{kind} {'accepted' if accepted else 'rejected'}"] += 1


def summary_lines() -> list[str]:
    kinds = sorted({key.rsplit(" ", 1)[0] for key in TALLY})
    lines = []
    for kind in kinds:
        lines.append(f"{kind}: {TALLY[kind + ' tried']} tried, {TALLY[kind + ' rejected']} "
                     f"rejected, {TALLY[kind + ' accepted']} accepted")
    total = sum(TALLY[k + " tried"] for k in kinds)
    rejected = sum(TALLY[k + " rejected"] for k in kinds)
    accepted = sum(TALLY[k + " accepted"] for k in kinds)
    lines.append(f"all: {total} tried, {rejected} rejected, {accepted} accepted")
    return lines


# -- the oracle: what must never be accepted -------------------------------------------------
# Everything that reaches an ssh command line or a generated ssh config: a narrow ASCII
# alphabet (no space, quote, shell metacharacter, '%' token, control or non-ASCII char).
SSH_SAFE = frozenset(string.ascii_letters + string.digits + "._/+@,=:~[]-")
# Image references, versions and sizes (Docker build arguments, tags, limits).
WORD_SAFE = frozenset(string.ascii_letters + string.digits + "._/+@:-")


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"  # C0, DEL and C1 (U+0080..U+009F)


def unsafe_ssh_value(value: Any, chain: bool = False) -> str | None:
    """Why ``value`` could become an ssh option or shell syntax, or None if it cannot.

    ``chain``: a ProxyJump list, where no hop (and no host after '@') may be an option.
    """
    if not isinstance(value, str) or value == "":
        return f"not a non-empty string: {value!r}"
    bad = sorted(set(value) - SSH_SAFE)
    if bad:
        return f"characters {bad!r}"
    for hop in value.split(",") if chain else [value]:
        if hop.startswith("-") or (chain and hop.rpartition("@")[2].startswith("-")):
            return f"an option: {hop!r}"
    return None


def unsafe_text(value: str) -> str | None:
    """Text only shown to people: no control character, and printable at all."""
    if any(is_control(ch) for ch in value):
        return "a control character"
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "an unpaired surrogate (cannot be printed)"
    return None


def unsafe_word(value: Any) -> str | None:
    if not isinstance(value, str) or value == "":
        return f"not a non-empty string: {value!r}"
    bad = sorted(set(value) - WORD_SAFE)
    if bad:
        return f"characters {bad!r}"
    return "an option" if value.startswith("-") else None


SSH_FIELDS = ("hostname", "user", "identity_file", "jump_host", "docker_socket")


def unsafe_in_host(config: Any) -> list[str]:
    """Every reason an accepted hosts.json entry (a HostConfig) is unsafe."""
    problems = []
    for name in SSH_FIELDS:
        value = getattr(config, name)
        if value is not None and (why := unsafe_ssh_value(value, chain=name == "jump_host")):
            problems.append(f"{name}: {why}")
    if config.port is not None and (isinstance(config.port, bool)
                                    or not isinstance(config.port, int)
                                    or not 1 <= config.port <= 65535):
        problems.append(f"port: {config.port!r}")
    for group in config.groups:
        if why := unsafe_ssh_value(group):
            problems.append(f"group: {why}")
    if config.description is not None and (why := unsafe_text(config.description)):
        problems.append(f"description holds {why}: {config.description!r}")
    problems += unsafe_in_config_values(config.settings)
    return problems


def unsafe_in_config_values(values: dict[str, Any]) -> list[str]:
    """Every reason accepted config.json values (a dict of key: value) are unsafe."""
    problems = []
    for key in ("image", "opencode_version", "memory_limit"):
        value = values.get(key)
        if value is not None and (why := unsafe_word(value)):
            problems.append(f"{key}: {why}")
    bind = values.get("bind_address")
    if bind is not None and (why := unsafe_word(bind)):
        problems.append(f"bind_address: {why}")
    for entry in values.get("container_env") or []:
        name = entry.partition("=")[0]
        if not name or set(name) - set(string.ascii_letters + string.digits + "_") \
                or name[0].isdigit():
            problems.append(f"container_env name {name!r}")
        if "\0" in entry or any("\ud800" <= ch <= "\udfff" for ch in entry):
            problems.append(f"container_env entry holds NUL or a lone surrogate: {entry!r}")
    ca = values.get("extra_ca_certs")
    if ca is not None and ("\0" in ca or any("\ud800" <= ch <= "\udfff" for ch in ca)):
        problems.append(f"extra_ca_certs holds NUL or a lone surrogate: {ca!r}")
    return problems


# -- valid parts ---------------------------------------------------------------------------
ALNUM = string.ascii_letters + string.digits
PATH_CHARS = ALNUM + "._/+@,=:-"
SOCKET_CHARS = ALNUM + "._/+@,=-"

names = st.builds(lambda head, tail: head + tail, st.sampled_from(ALNUM),
                  st.text(ALNUM + "._-", max_size=20))
host_names = names.filter(lambda n: n.lower() != "local")
# (st.builds of plain text rather than st.from_regex: four times faster to generate)
LABEL_ENDS = ALNUM + "_"
labels = st.sampled_from(LABEL_ENDS) | st.builds(
    lambda head, middle, tail: head + middle + tail, st.sampled_from(LABEL_ENDS),
    st.text(LABEL_ENDS + "-", max_size=14), st.sampled_from(LABEL_ENDS))
dns_names = st.builds(lambda parts, dot: ".".join(parts) + dot,
                      st.lists(labels, min_size=1, max_size=4), st.sampled_from(["", "."]))
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
hostnames = st.one_of(dns_names, ipv4, ipv6)
users = st.builds(lambda head, tail: head + tail, st.sampled_from(ALNUM + "_"),
                  st.text(ALNUM + "_.-", max_size=31))
ports = st.integers(1, 65535)
identity_files = st.builds(lambda head, tail: head + tail, st.sampled_from(["~/", "/"]),
                           st.text(PATH_CHARS, max_size=40))
docker_sockets = st.builds(lambda tail: "/" + tail, st.text(SOCKET_CHARS, max_size=40)).filter(
    lambda s: "/../" not in s + "/")
hops = st.builds(
    lambda user, host, port: f"{user + '@' if user else ''}{host}{':' + str(port) if port else ''}",
    st.none() | users, st.one_of(dns_names, ipv4, ipv6.map(lambda a: f"[{a}]")),
    st.none() | ports)
jump_hosts = st.lists(hops, min_size=1, max_size=8).map(",".join)
descriptions = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=200)

# config.json values
env_entries = st.builds(lambda name, value: f"{name}={value}",
                        st.builds(lambda head, tail: head + tail,
                                  st.sampled_from(string.ascii_letters + "_"),
                                  st.text(ALNUM + "_", max_size=15)),
                        st.text(st.characters(exclude_characters="\0",
                                              exclude_categories=("Cs",)), max_size=30))
CONFIG_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "opencode_web_port": ports,
    "bind_address": st.ip_addresses().map(str),
    "cockpit_enabled": st.booleans(),
    "cockpit_port": ports,
    "container_env": st.lists(env_entries, max_size=4),
    "image": st.builds(lambda head, tail: head + tail,
                       st.sampled_from(string.ascii_lowercase + string.digits),
                       st.text(string.ascii_lowercase + string.digits + "._/:@-", max_size=30)),
    "image_source": st.sampled_from(["build", "prebuilt", "ship"]),
    "opencode_version": st.builds(
        lambda parts, sep, suffix: ".".join(map(str, parts)) + (sep + suffix if sep else ""),
        st.tuples(*[st.integers(0, 999)] * 3), st.sampled_from(["", "-", "+"]),
        st.text(ALNUM + ".-", min_size=1, max_size=8)),
    "extra_ca_certs": st.none() | identity_files,
    "memory_limit": st.none() | st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 99999),
                                          st.sampled_from(["", *"bkmgBKMG"])),
}
config_values = st.fixed_dictionaries({}, optional=CONFIG_VALUES)

HOST_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "user": st.none() | users,
    "port": st.none() | ports,
    "identity_file": st.none() | identity_files,
    "jump_host": st.none() | jump_hosts,
    "groups": st.none() | st.lists(names, max_size=4),
    "description": st.none() | descriptions,
    "docker_socket": st.none() | docker_sockets,
    "docker_missing": st.booleans(),
    "settings": st.none() | config_values,
}
host_entries = st.fixed_dictionaries({"hostname": hostnames}, optional=HOST_VALUES)
# cheaper to generate: the ground for hostile changes and for the CLI's files
simple_host_entries = st.fixed_dictionaries(
    {"hostname": hostnames},
    optional={"port": ports, "user": users, "groups": st.lists(names, max_size=2)})


@st.composite
def hosts_documents(draw: st.DrawFn, max_hosts: int = 3,
                    entries: st.SearchStrategy[dict[str, Any]] = host_entries) -> dict[str, Any]:
    """A valid hosts.json document as a JSON value."""
    hosts = draw(st.dictionaries(host_names, entries, max_size=max_hosts))
    doc: dict[str, Any] = {"hosts": hosts}
    if draw(st.booleans()):
        doc["version"] = 1
    if hosts and draw(st.booleans()):
        doc["default_host"] = draw(st.sampled_from(sorted(hosts)))
    elif draw(st.booleans()):
        doc["default_host"] = None
    return doc


# -- hostile parts -------------------------------------------------------------------------
INJECTIONS = [
    "-oProxyCommand=touch /tmp/occ-fuzz-PWNED", "-oProxyCommand=sh", "-F/dev/null", "-",
    "--", "-J", "-oLocalCommand=id", "-oPermitLocalCommand=yes", "x -oProxyCommand=id",
    "a@-oProxyCommand=id", "ok,-oProxyCommand=id", "%d", "%h", "~root", "/../../etc/passwd",
    "$(touch /tmp/occ-fuzz-PWNED)", "`id`", "a;id", "a|id", "a&&id", "a\nProxyCommand id",
    "a\0b", "local", "LOCAL", "Local", "[::1", "[h1]", "::1%eth0", "fe80::1%25x", "[::1]:-1",
    "a:0", "a:65536", "a:1:2", "@a", "a@", ",", "a,,b", "a," * 9 + "a", "١٢٣", "ｗｅｂ",
    "we\u200bb", "\u202eevil", "a\u2028b", "\ufeffa", "a\x85b", "a\x9b31mb", "1.18.33\n",
    "4g\n", "A\n=1", "opencode\n", "127.0.0.1\n", "::1%\n", "::1%\x00", "٤g", "١.٢.٣",
    "a\ud800", "\udc00", "A=\ud800", "\ud83d\ude00", "/,-",
]
METACHARS = list(";|&$()`'\"<>*?{}!#%\\ \t\n\r\0\x1b\x7f\x85\x9b\u2028\u202e\ufeff~@:,[]")
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=4)
# a valid value of any kind, as raw material to damage
valid_strings = st.one_of(names, hostnames, users, identity_files, hops, docker_sockets,
                          CONFIG_VALUES["image"], CONFIG_VALUES["opencode_version"])


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A valid string with hostile characters inserted (at the end too: '$' matches
    before a final newline in Python regexes)."""
    value = draw(valid_strings)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.sampled_from([0, len(value), draw(st.integers(0, len(value)))]))
        value = value[:at] + draw(st.sampled_from(METACHARS)) + value[at:]
    return value


hostile_strings = st.one_of(
    st.sampled_from(INJECTIONS),
    valid_strings.map(lambda s: "-" + s),
    damaged(),
    st.text(max_size=30),  # any unicode
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF), min_size=1, max_size=8),
    st.sampled_from(["", "x" * 300, "a." * 130, "a" * 64, "1" * 400]),
)
hostile_values = st.one_of(  # what a hand-edited JSON file may hold instead
    hostile_strings,
    any_json,
    st.sampled_from([2**70, -1, 0, 65536, 1.5, float("nan"), float("inf"), True, False, None,
                     [], {}]),
)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] = hostile_strings,
           ) -> st.SearchStrategy[Any]:
    """Three times in four a valid value, else a hostile one (so that a command with many
    values is sometimes accepted)."""
    return st.integers(0, 3).flatmap(lambda i: hostile if i == 0 else valid)


def dump(doc: Any) -> str:
    return json.dumps(doc, indent=2)
