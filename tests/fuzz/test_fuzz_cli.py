"""Property-based fuzzing of the real CLI, in-process: ``occ host add``, ``occ config set``
and ``occ host edit --set`` with generated values, on generated files.

``opencode_cloud.cli.main.main(argv)`` runs as `occ` would (it always ends in SystemExit),
with XDG_CONFIG_HOME/XDG_DATA_HOME in a private folder. Properties, for every run:
- it exits 0, 1 (one ``Error:`` line, no "unexpected" error) or 2 (usage); no traceback,
  and its standard output can be written to a UTF-8 terminal;
- a refused command leaves hosts.json and config.json byte for byte as they were;
- an accepted one saved no value that could become an ssh option or shell syntax, saved
  what was asked for, and the file round-trips (load -> render -> load);
- no process is started (``--no-verify``; nothing here may reach ssh).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opencode_cloud.cli.main import main
from opencode_cloud.config.model import FIELDS as CONFIG_FIELDS
from opencode_cloud.config.store import coerce_value, parse_config, render
from opencode_cloud.errors import ConfigError
from opencode_cloud.hosts.store import parse_hosts, render_hosts
from tests.fuzz import fuzz_support as fz

pytestmark = pytest.mark.fuzz

FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


@dataclass
class Home:
    hosts_file: Path
    config_file: Path
    started: list[list[str]]

    def lay(self, hosts_text: str | None, config_text: str | None) -> None:
        for path, text in ((self.hosts_file, hosts_text), (self.config_file, config_text)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if text is not None:
                path.write_text(text, encoding="utf-8", errors="surrogatepass")

    def snapshot(self) -> tuple[bytes | None, bytes | None]:
        return tuple(p.read_bytes() if p.exists() else None
                     for p in (self.hosts_file, self.config_file))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("fuzz-cli")
    control = Path(tempfile.mkdtemp(prefix="occf", dir="/tmp"))  # short: socket paths
    started: list[list[str]] = []

    class NoProcess:  # nothing in these commands may start a process (ssh above all)
        def __init__(self, argv, *args, **kwargs) -> None:
            started.append(list(argv))
            raise AssertionError(f"a process was started: {argv}")

    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith(("OCC_", "XDG_"))]:
            mp.delenv(name)
        mp.setenv("XDG_CONFIG_HOME", str(root / "config"))
        mp.setenv("XDG_DATA_HOME", str(root / "data"))
        mp.setenv("OCC_SSH_CONFIG", "none")
        mp.setenv("OCC_SSH_KNOWN_HOSTS", str(root / "known_hosts"))
        mp.setenv("OCC_SSH_CONTROL_DIR", str(control))
        mp.setenv("NO_COLOR", "1")
        mp.setattr(subprocess, "Popen", NoProcess)
        folder = root / "config" / "opencode-cloud"
        folder.mkdir(parents=True)
        yield Home(folder / "hosts.json", folder / "config.json", started)
    shutil.rmtree(control, ignore_errors=True)


def occ(home: Home, argv: list[str]) -> tuple[int, str, str]:
    """Run `occ ARGV` in-process; check the exit code, the output and that no process ran."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code
    stdout, stderr = out.getvalue(), err.getvalue()
    assert code in (0, 1, 2), (argv, code, stderr)
    # occ's last resort for a bug is "Error: unexpected ValueError: ..." (exit 1)
    assert "Traceback" not in stderr and "Error: unexpected " not in stderr, (argv, stderr)
    if code == 1:
        assert any(line.startswith("Error: ") for line in stderr.splitlines()), (argv, stderr)
    if code == 2:
        assert "Error:" in stderr, (argv, stderr)
    # stdout is strict UTF-8 in a UTF-8 locale (stderr escapes what it cannot encode)
    stdout.encode("utf-8")
    assert not home.started, home.started
    return code, stdout, stderr


def check_saved(home: Home, kind: str, before: tuple, code: int, argv: list[str]):
    """Refused: nothing changed on disk. Accepted: both files are safe and round-trip.
    Returns the hosts and config on disk after an accepted command."""
    fz.record(kind, accepted=code == 0)
    if code != 0:
        assert home.snapshot() == before, f"a refused command changed a file: {argv}"
        return None, None
    hosts = config = None
    if home.hosts_file.exists():
        hosts = parse_hosts(home.hosts_file.read_text(), home.hosts_file)
        problems = [p for c in hosts.hosts.values() for p in fz.unsafe_in_host(c)]
        assert not problems, (argv, problems)
        assert parse_hosts(render_hosts(hosts), home.hosts_file) == hosts
        assert render_hosts(hosts) == home.hosts_file.read_text()
    if home.config_file.exists():
        config = parse_config(home.config_file.read_text(), home.config_file)
        problems = fz.unsafe_in_config_values(config.to_dict())
        assert not problems, (argv, problems)
        assert parse_config(render(config), home.config_file) == config
    return hosts, config


def is_valid(text: str | None, parse) -> bool:
    try:
        parse(text, Path("x"))
    except ConfigError:
        return False
    return True


# -- generated values and files ---------------------------------------------------------
# Command-line values are strings: valid ones, hostile ones, and undecodable bytes as
# Python hands them over (surrogateescape: b"\xff" -> "\udcff").
cli_hostile = fz.hostile_strings | st.sampled_from(
    ["\udcff", "a\udc80b", "-oProxyCommand=id", "--help", "-h", "--force", "~/ok", "rel/key",
     "./key", "../key", "~user/key"])


def mostly(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return fz.mostly(valid, cli_hostile)


# files on disk: simple valid entries (their own fuzzing is in test_fuzz_files)
simple_hosts = st.dictionaries(fz.host_names, fz.simple_host_entries, max_size=2)


@st.composite
def hosts_file_texts(draw: st.DrawFn) -> str | None:
    """Mostly a valid hosts.json; sometimes none, or a damaged one."""
    how = draw(st.integers(0, 9))
    if how == 0:
        return None
    doc = {"version": 1, "hosts": draw(simple_hosts)}
    if how == 1:  # a hand-edited file with a bad entry: every change must be refused
        name = draw(fz.host_names)
        doc["hosts"][name] = {"hostname": draw(fz.hostnames),
                              draw(st.sampled_from(["port", "user", "jump_host"])):
                              draw(fz.hostile_values)}
    if how == 2:
        return fz.dump(doc)[:-3]
    return fz.dump(doc)


config_file_texts = st.one_of(st.none(), fz.config_values.map(fz.dump),
                              st.sampled_from(['{"colour": "blue"}', "{", "[]"]))


Option = tuple[str, str, list[str]]  # flag, value, the words on the command line


def option(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[Option]:
    """``FLAG VALUE`` or ``FLAG=VALUE`` / ``-fVALUE`` (so that '-x' values reach the checks)."""
    joined = (lambda x: f"{flag}={x}") if flag.startswith("--") else (lambda x: flag + x)
    return st.one_of(values.map(lambda x: (flag, x, [flag, x])),
                     values.map(lambda x: (flag, x, [joined(x)])))


def some_options(draw: st.DrawFn, options: list[st.SearchStrategy[Option]],
                 most: int = 3) -> tuple[list[str], dict[str, str]]:
    """Up to ``most`` of ``options`` in a random order: the words, and flag -> value."""
    chosen = draw(st.lists(st.sampled_from(range(len(options))), max_size=most, unique=True))
    words: list[str] = []
    values: dict[str, str] = {}
    for i in chosen:
        flag, value, option_words = draw(options[i])
        words += option_words
        values[flag] = value
    return words, values


# -- occ host add -----------------------------------------------------------------------
@st.composite
def host_add_argv(draw: st.DrawFn) -> tuple[list[str], str, str, dict[str, str]]:
    """(argv, NAME, HOSTNAME, option flag -> value)"""
    name = draw(mostly(fz.host_names))
    hostname = draw(mostly(fz.hostnames))
    options = [
        option("--user", mostly(fz.users)), option("-p", mostly(fz.ports.map(str))),
        option("-i", mostly(fz.identity_files)), option("-J", mostly(fz.jump_hosts)),
        option("-g", mostly(fz.names)), option("-g", mostly(fz.names)),
        option("--description", mostly(fz.descriptions)),
        option("--docker-socket", mostly(fz.docker_sockets)),
    ]
    extra, values = some_options(draw, options, most=4)
    extra += draw(st.sampled_from([[], ["--force"], ["--default"]]))
    if draw(st.booleans()) or "--" in (name, hostname):  # '--' ends the options
        return (["host", "add", *extra, "--no-verify", "--", name, hostname], name, hostname,
                values)
    return ["host", "add", name, hostname, *extra, "--no-verify"], name, hostname, values


@settings(FUZZ, max_examples=700)
@given(hosts_file_texts(), host_add_argv())
@example('{"hosts": {}}', (["host", "add", "--no-verify", "--", "web", "-oProxyCommand=id"],
                          "web", "-oProxyCommand=id", {}))
@example('{"hosts": {}}', (["host", "add", "web", "web", "-J", "a,-oProxyCommand=id",
                           "--no-verify"], "web", "web", {}))
@example('{"hosts": {}}', (["host", "add", "web", "web", "-p", "١٢", "--no-verify"],
                          "web", "web", {}))
@example('{"hosts": {}}', (["host", "add", "web", "web", "-d", "x\x9b2J", "--no-verify"],
                          "web", "web", {}))
@example('{"hosts": {}}', (["host", "add", "web", "web", "-d", "\udcff", "--no-verify"],
                          "web", "web", {}))
@example('{"hosts": {"a": {"hostname": "a", "port": "22;id"}}}',
         (["host", "add", "web", "web", "--no-verify"], "web", "web", {}))
def test_host_add(home: Home, hosts_text: str | None,
                  case: tuple[list[str], str, str, dict[str, str]]) -> None:
    argv, name, hostname, values = case
    home.lay(hosts_text, None)
    before = home.snapshot()
    code, out, _err = occ(home, argv)
    if code == 0 and out.startswith("Usage:"):  # '-h' or '--help' as NAME: help, no change
        assert home.snapshot() == before
        return
    hosts, _config = check_saved(home, "cli: host add", before, code, argv)
    if code == 0:
        assert is_valid(hosts_text or "{}", parse_hosts), "changed an invalid hosts.json"
        assert hosts.hosts[name].hostname == hostname
        saved = hosts.hosts[name]
        for flag, field in (("-J", "jump_host"), ("--user", "user"),
                            ("--docker-socket", "docker_socket"), ("--description", "description")):
            if flag in values:
                assert getattr(saved, field) == values[flag]
        if "-p" in values:
            assert saved.port == int(values["-p"])
        if "-i" in values:
            assert saved.identity_file == (values["-i"] if values["-i"].startswith(("~", "/"))
                                           else os.path.abspath(values["-i"]))


# -- occ config set ---------------------------------------------------------------------
def config_value_text(key: str) -> st.SearchStrategy[str]:
    strategy = fz.CONFIG_VALUES.get(key, st.text(max_size=10))
    return strategy.map(lambda x: json.dumps(x) if isinstance(x, list | bool) or x is None
                        else str(x))


config_keys = st.sampled_from([*CONFIG_FIELDS, "colour", "", "Image", "image "])


@settings(FUZZ, max_examples=800)
@given(config_file_texts, config_keys.flatmap(
    lambda key: st.tuples(st.just(key), mostly(config_value_text(key)))))
@example(None, ("opencode_version", "1.18.33\n"))
@example(None, ("image", "opencode;id"))
@example(None, ("memory_limit", "٤g"))
@example(None, ("bind_address", "::1%\n"))
@example(None, ("container_env", '["A\\n=1"]'))
@example(None, ("extra_ca_certs", "\udcff"))
@example('{"colour": "blue"}', ("image", "ok"))
def test_config_set(home: Home, config_text: str | None, key_value: tuple[str, str]) -> None:
    key, value = key_value
    home.lay(None, config_text)
    before = home.snapshot()
    argv = ["config", "set", "--", key, value]
    code, _out, _err = occ(home, argv)
    _hosts, config = check_saved(home, "cli: config set", before, code, argv)
    if code == 0:
        assert is_valid(config_text or "{}", parse_config), "changed an invalid config.json"
        assert getattr(config, key) == coerce_value(key, value)


# -- occ host edit NAME --set KEY=VALUE (and other edits) -------------------------------
@st.composite
def host_edit_case(draw: st.DrawFn) -> tuple[str, list[str]]:
    doc = {"version": 1, "hosts": draw(simple_hosts)}
    if not doc["hosts"]:
        doc["hosts"][draw(fz.host_names)] = draw(fz.simple_host_entries)
    name = draw(mostly(st.sampled_from(sorted(doc["hosts"]))))
    sets = []
    for _ in range(draw(st.integers(1, 3))):
        key = draw(config_keys)
        sets += ["--set", f"{key}={draw(mostly(config_value_text(key)))}"]
    others, _values = some_options(draw, [option("-p", mostly(fz.ports.map(str) | st.just(""))),
                                 option("-J", mostly(fz.jump_hosts | st.just(""))),
                                 option("--hostname", mostly(fz.hostnames))], most=2)
    unset = draw(st.lists(config_keys, max_size=1))
    return fz.dump(doc), ["host", "edit", *sets, *others,
                          *[w for k in unset for w in ("--unset", k)], "--", name]


@settings(FUZZ, max_examples=450)
@given(host_edit_case())
@example(('{"hosts": {"web": {"hostname": "web"}}}',
          ["host", "edit", "--set", "image=opencode\n", "--", "web"]))
@example(('{"hosts": {"web": {"hostname": "web"}}}',
          ["host", "edit", "--set", "opencode_web_port=١٢", "--", "web"]))
@example(('{"hosts": {"web": {"hostname": "web"}}}',
          ["host", "edit", "--set", "container_env=[\"A=\\u0000\"]", "--", "web"]))
@example(('{"hosts": {"web": {"hostname": "web"}}}',
          ["host", "edit", "-J", "-oProxyCommand=id", "--", "web"]))
def test_host_edit(home: Home, case: tuple[str, list[str]]) -> None:
    hosts_text, argv = case
    home.lay(hosts_text, None)
    before = home.snapshot()
    code, _out, _err = occ(home, argv)
    hosts, _config = check_saved(home, "cli: host edit", before, code, argv)
    if code == 0:
        name = argv[-1]
        settings_ = hosts.hosts[name].settings
        unset = {argv[i + 1] for i, w in enumerate(argv) if w == "--unset"}
        asked = dict(argv[i + 1].partition("=")[::2] for i, w in enumerate(argv) if w == "--set")
        for key, raw in asked.items():  # the last --set of a key wins, --unset beats --set
            if key not in unset:
                assert settings_[key] == coerce_value(key, raw)
        assert not unset & set(settings_)
