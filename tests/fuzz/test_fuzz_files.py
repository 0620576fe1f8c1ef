"""Property-based fuzzing of hosts.json, config.json and the value checks (hypothesis).

Properties, for every generated document or value:
- the real parser either accepts it or raises ConfigError (a check: ValueError); nothing
  else, so `occ` can only ever print one ``Error:`` line, never a traceback;
- an accepted one holds no value that could become an ssh option or shell syntax (the
  oracle in fuzz_support, written independently of the validation code);
- an accepted one round-trips: load -> render -> load gives the same, and rendering again
  gives the same text.

The counts of documents tried, rejected and accepted are printed at the end of the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opencode_cloud.config.model import FIELDS as CONFIG_FIELDS
from opencode_cloud.config.store import parse_config, render
from opencode_cloud.errors import ConfigError
from opencode_cloud.hosts import validation as v
from opencode_cloud.hosts.model import ALL_FIELDS
from opencode_cloud.hosts.store import parse_hosts, render_hosts
from tests.fuzz import fuzz_support as fz

pytestmark = pytest.mark.fuzz

SOURCE = Path("/fuzz/hosts.json")
FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


def load_hosts_text(text: str):
    """parse_hosts, with the property that only ConfigError may come out of it."""
    try:
        hosts = parse_hosts(text, SOURCE)
    except ConfigError as exc:
        assert exc.message and exc.hint, "every error says what to do"
        fz.record("hosts.json", accepted=False)
        return None
    fz.record("hosts.json", accepted=True)
    problems = [f"{name}: {p}" for name, c in hosts.hosts.items()
                for p in fz.unsafe_in_host(c)]
    problems += [f"host name {n!r}" for n in hosts.hosts
                 if fz.unsafe_ssh_value(n) or n.lower() == "local"]
    assert not problems, f"accepted unsafe values {problems} from {text!r}"
    rendered = render_hosts(hosts)
    again = parse_hosts(rendered, SOURCE)
    assert again == hosts
    assert render_hosts(again) == rendered
    return hosts


def load_config_text(text: str):
    try:
        config = parse_config(text, SOURCE.with_name("config.json"))
    except ConfigError as exc:
        assert exc.message and exc.hint
        fz.record("config.json", accepted=False)
        return None
    fz.record("config.json", accepted=True)
    problems = fz.unsafe_in_config_values(config.to_dict())
    assert not problems, f"accepted unsafe values {problems} from {text!r}"
    rendered = render(config)
    again = parse_config(rendered, SOURCE.with_name("config.json"))
    assert again == config
    assert render(again) == rendered
    return config


# -- hosts.json ---------------------------------------------------------------------------
@settings(FUZZ, max_examples=500)
@given(fz.hosts_documents(max_hosts=2))
def test_valid_hosts_documents_are_accepted_and_round_trip(doc: dict[str, Any]) -> None:
    hosts = load_hosts_text(fz.dump(doc))
    assert hosts is not None, doc
    assert sorted(hosts.hosts) == sorted(doc["hosts"])
    assert hosts.default_host == doc.get("default_host")
    for name, entry in doc["hosts"].items():
        assert hosts.hosts[name].hostname == entry["hostname"]
        for key in ("user", "port", "identity_file", "jump_host", "docker_socket"):
            assert getattr(hosts.hosts[name], key) == entry.get(key)


def wrapped(draw: st.DrawFn, doc: Any) -> Any:
    """Mostly the document itself; sometimes inside a list, or replaced by any value."""
    how = draw(st.integers(0, 9))
    return doc if how < 8 else [doc] if how == 8 else draw(fz.hostile_values)


@st.composite
def hostile_hosts_documents(draw: st.DrawFn) -> Any:
    """A valid document with one or two hostile changes."""
    doc = draw(fz.hosts_documents(max_hosts=2, entries=fz.simple_host_entries))
    for _ in range(draw(st.integers(1, 2))):
        hosts = doc.get("hosts") if isinstance(doc.get("hosts"), dict) else None
        where = draw(st.sampled_from(["field", "field", "field", "name", "settings",
                                      "top", "default"]))
        if where in ("field", "name", "settings") and not hosts:
            doc["hosts"] = hosts = {draw(fz.host_names): draw(fz.simple_host_entries)}
        if where == "field":
            name = draw(st.sampled_from(sorted(hosts)))
            if not isinstance(hosts[name], dict):
                hosts[name] = draw(fz.simple_host_entries)
            key = draw(st.sampled_from([*ALL_FIELDS, "hostname", "proxy_command",
                                        "ProxyCommand", "Hostname", ""]))
            hosts[name][key] = draw(fz.hostile_values)
        elif where == "name":
            old = draw(st.sampled_from(sorted(hosts)))
            new = draw(fz.hostile_values.filter(lambda x: isinstance(x, str))
                       | fz.host_names.map(str.upper) | st.just(old + "."))
            hosts[new] = hosts.pop(old) if draw(st.booleans()) else hosts[old]
        elif where == "settings":
            name = draw(st.sampled_from(sorted(hosts)))
            if not isinstance(hosts[name], dict):
                hosts[name] = draw(fz.simple_host_entries)
            key = draw(st.sampled_from([*CONFIG_FIELDS, "colour", "hostname"]))
            settings_ = hosts[name].get("settings")
            settings_ = settings_ if isinstance(settings_, dict) else {}
            settings_[key] = draw(fz.hostile_values)
            hosts[name]["settings"] = (settings_ if draw(st.booleans())
                                       else draw(fz.hostile_values))
        elif where == "top":
            key = draw(st.sampled_from(["version", "hosts", "default_host", "extra", "Hosts"]))
            doc[key] = draw(fz.hostile_values)
        else:
            doc["default_host"] = draw(fz.hostile_values | fz.host_names)
    return wrapped(draw, doc)


@settings(FUZZ, max_examples=1100)
@given(hostile_hosts_documents())
@example({"hosts": {"web": {"hostname": "-oProxyCommand=touch /tmp/occ-fuzz-PWNED"}}})
@example({"hosts": {"web": {"hostname": "web", "jump_host": "a,-oProxyCommand=id"}}})
@example({"hosts": {"web": {"hostname": "web", "description": "a\x9b31mb"}}})
@example({"hosts": {"web": {"hostname": "web", "settings": {"image": "opencode\n"}}}})
@example({"hosts": {"LOCAL": {"hostname": "web"}}})
@example({"hosts": {"web": {"hostname": "web", "description": "x\ud800"}}})
@example({"hosts": {"web": {"hostname": "web", "docker_socket": "/,-"}}})
def test_hostile_hosts_documents_are_refused_or_safe(doc: Any) -> None:
    load_hosts_text(fz.dump(doc))


@st.composite
def damaged_texts(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> str:
    """Text-level damage: truncation, garbage, comments, duplicate keys, deep nesting."""
    text = fz.dump(draw(documents))
    how = draw(st.sampled_from(["truncate", "garbage", "comment", "duplicate", "deep",
                                "splice"]))
    if how == "truncate":
        return text[:draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "garbage":
        return draw(st.text(max_size=200))
    if how == "comment":  # JSONC is accepted: a comment and a trailing comma change nothing
        return text.replace("{", "{ // a note\n", 1).replace("\n}", ",\n}", 1)
    if how == "duplicate":  # the same key twice: JSON keeps the last one
        return text.replace("{", '{"hosts": {"x": {"hostname": "-oProxyCommand=id"}},', 1)
    if how == "deep":
        depth = draw(st.sampled_from([100, 1000, 5000]))  # 100_000: an explicit example
        return '{"hosts": ' + "[" * depth + "]" * draw(st.sampled_from([0, depth])) + "}"
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.text(max_size=5)) + text[at:]


@settings(FUZZ, max_examples=300)
@given(damaged_texts(fz.hosts_documents(max_hosts=2)))
@example('{"hosts": ' + "[" * 100_000 + "}")
@example('{"version": 1, "hosts": {}} // trailing comment')
@example('{"hosts": {"a": {"hostname": "a", "description": "\\ud800\\udc00"}},}')
def test_damaged_hosts_texts_are_refused_or_safe(text: str) -> None:
    load_hosts_text(text)


# -- config.json --------------------------------------------------------------------------
@settings(FUZZ, max_examples=600)
@given(fz.config_values)
def test_valid_config_documents_are_accepted_and_round_trip(values: dict[str, Any]) -> None:
    config = load_config_text(fz.dump(values))
    assert config is not None, values
    for key, value in values.items():
        assert getattr(config, key) == value


@st.composite
def hostile_config_documents(draw: st.DrawFn) -> Any:
    doc = draw(fz.config_values)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from([*CONFIG_FIELDS, "colour", "", "OPENCODE_WEB_PORT"]))
        doc[key] = draw(fz.hostile_values | st.lists(fz.hostile_values, max_size=3)
                        if key == "container_env" else fz.hostile_values)
    return wrapped(draw, doc)


@settings(FUZZ, max_examples=1500)
@given(hostile_config_documents())
@example({"opencode_version": "1.18.33\n"})
@example({"image": "opencode\n"})
@example({"memory_limit": "4g\n"})
@example({"memory_limit": "٤g"})
@example({"opencode_version": "١.٢.٣"})
@example({"container_env": ["A\n=1"]})
@example({"bind_address": "::1%\n"})
@example({"extra_ca_certs": "/a\0b"})
@example({"container_env": ["A=\ud800"]})
def test_hostile_config_documents_are_refused_or_safe(doc: Any) -> None:
    load_config_text(fz.dump(doc))


@settings(FUZZ, max_examples=300)
@given(damaged_texts(fz.config_values))
@example("[" * 100_000)
@example('{"container_env": ["A=\\ud83d\\ude00"],}')
def test_damaged_config_texts_are_refused_or_safe(text: str) -> None:
    load_config_text(text)


# -- the checks themselves ----------------------------------------------------------------
CHECKS = {
    "host name": (v.check_host_name, fz.unsafe_ssh_value),
    "group": (v.check_group, fz.unsafe_ssh_value),
    "hostname": (v.check_hostname, fz.unsafe_ssh_value),
    "user": (v.check_user, fz.unsafe_ssh_value),
    "jump host": (v.check_jump_host, lambda s: fz.unsafe_ssh_value(s, chain=True)),
    "identity file": (v.check_identity_file, fz.unsafe_ssh_value),
    "docker socket": (v.check_docker_socket, fz.unsafe_ssh_value),
    "description": (v.check_description, fz.unsafe_text),
    "port": (v.parse_port, lambda p: None if type(p) is int and 1 <= p <= 65535 else "port"),
}


@settings(FUZZ, max_examples=4000)
@given(st.sampled_from(sorted(CHECKS)),
       fz.hostile_values | fz.valid_strings | fz.descriptions | fz.ports.map(str))
@example("port", "١٢")
@example("description", "a\x85b")
@example("jump host", "h:١٢")
def test_checks_refuse_or_return_a_safe_value(which: str, value: Any) -> None:
    check, unsafe = CHECKS[which]
    if which == "port" and not isinstance(value, str):
        value = json.dumps(value)  # parse_port takes the text typed on a command line
    try:
        result = check(value)
    except ValueError as exc:
        assert str(exc)
        fz.record("check value", accepted=False)
        return
    fz.record("check value", accepted=True)
    assert unsafe(result) is None, (which, value, unsafe(result))
    if which == "jump host":  # each hop's port is a plain number ssh can read
        for hop in result.split(","):
            _user, _host, port = v.split_jump_hop(hop)
            assert port is None or str(port) in hop
    if which != "port":
        assert result == value  # the checks never silently rewrite a value
