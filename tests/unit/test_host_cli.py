"""`occ host …` end to end as a subprocess, without any remote host.

An ``ssh`` wrapper first on PATH logs every call (then runs the real ssh), so tests can
assert that bad input never started ssh at all; injected ProxyCommands would touch a
marker file, which must never appear.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.forked_occ import run_forked

pytestmark = pytest.mark.unit


@dataclass
class Occ:
    env: dict[str, str]
    hosts_file: Path
    ssh_log: Path
    marker: Path
    tmp: Path

    def __call__(self, *args: str, timeout: float = 60,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        # A forked child, not a new interpreter: the same process boundary, fds and exit
        # status, at a few ms a call instead of ~80 (tests/forked_occ.py).
        return run_forked(args, self.env, input=input, timeout=timeout)

    def hosts(self) -> dict:
        return json.loads(self.hosts_file.read_text())

    def ssh_calls(self) -> list[str]:
        return self.ssh_log.read_text().splitlines() if self.ssh_log.exists() else []


def make_env(tmp: Path, ssh_script: str) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(ssh_script)
    (bin_dir / "ssh").chmod(0o755)
    control = Path(tempfile.mkdtemp(prefix="occu", dir="/tmp"))  # short: socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCC_", "XDG_"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
        OCC_SSH_CONFIG="none", OCC_SSH_KNOWN_HOSTS=str(tmp / "known_hosts"),
        OCC_SSH_CONTROL_DIR=str(control), OCC_SSH_RETRY_DELAY="0",
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
    )
    return env


@pytest.fixture
def occ(tmp_path: Path) -> Iterator[Occ]:
    log = tmp_path / "ssh.log"
    real = shutil.which("ssh") or "/usr/bin/ssh"
    script = f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n'
    env = make_env(tmp_path, script)
    yield Occ(env, tmp_path / "config" / "opencode-cloud" / "hosts.json", log,
              tmp_path / "PWNED", tmp_path)
    shutil.rmtree(env["OCC_SSH_CONTROL_DIR"], ignore_errors=True)


def test_crud_default_groups_and_json(occ: Occ) -> None:
    r = occ("host", "add", "web1", "web1.example.com", "-u", "deploy", "-p", "2222",
            "-i", "/keys/id_web", "-J", "ops@bastion:22", "-g", "prod", "-g", "eu",
            "-d", "Main box", "--no-verify")
    assert r.returncode == 0, r.stderr
    assert "Added host 'web1' (deploy@web1.example.com:2222 via ops@bastion:22)" in r.stdout
    assert occ("host", "add", "db", "10.0.0.5", "-g", "prod", "--no-verify",
               "--default").returncode == 0
    assert occ("host", "add", "lab", "::1", "--no-verify").returncode == 0

    entry = occ.hosts()["hosts"]["web1"]
    assert entry == {"hostname": "web1.example.com", "user": "deploy", "port": 2222,
                     "identity_file": "/keys/id_web", "jump_host": "ops@bastion:22",
                     "groups": ["prod", "eu"], "description": "Main box"}
    assert list(occ.hosts()["hosts"]) == ["db", "lab", "web1"]
    assert occ.hosts()["default_host"] == "db"

    table = occ("host", "list").stdout
    assert "NAME" in table and "GROUPS" in table
    line = next(ln for ln in table.splitlines() if ln.startswith("db "))
    assert line.rstrip().endswith("*")
    assert occ("host", "list", "--names-only").stdout.split() == ["db", "lab", "web1"]
    assert occ("host", "list", "-g", "prod", "--names-only").stdout.split() == ["db", "web1"]
    listed = json.loads(occ("host", "list", "--json", "-g", "eu").stdout)
    assert listed["default_host"] == "db"
    assert [(h["name"], h["default"], h["port"]) for h in listed["hosts"]] == [
        ("web1", False, 2222)]

    shown = json.loads(occ("host", "show", "web1", "--json").stdout)
    assert shown["config"]["user"] == "deploy"
    assert shown["effective"]["port"] == {"value": 2222, "source": "hosts.json"}
    assert shown["effective"]["jump_host"] == {"value": "ops@bastion:22", "source": "hosts.json"}
    assert shown["docker_socket"] == "/var/run/docker.sock"
    human = occ("host", "show", "db").stdout
    assert "(default host)" in human and "[default]" in human

    # edit: change, clear with '', groups in and out
    r = occ("host", "edit", "web1", "-p", "", "-u", "root", "--add-group", "new",
            "--remove-group", "eu", "-d", "", "-J", "")
    assert r.returncode == 0, r.stderr
    entry = occ.hosts()["hosts"]["web1"]
    assert (entry["port"], entry["user"], entry["description"], entry["jump_host"]) == (
        None, "root", None, None)
    assert entry["groups"] == ["prod", "new"]
    assert occ("host", "edit", "web1").returncode == 2  # nothing to change

    # default: show, set, local
    assert occ("host", "default").stdout.strip() == "db"
    assert occ("host", "default", "web1").returncode == 0
    assert occ("host", "default").stdout.strip() == "web1"
    assert occ("host", "default", "local").returncode == 0
    assert occ("host", "default").stdout.splitlines()[0] == "local"
    assert occ.hosts()["default_host"] is None
    r = occ("host", "default", "nope")
    assert r.returncode == 1 and "no host named 'nope'" in r.stderr

    # remove: asks first (refuses without a terminal), clears the default
    occ("host", "default", "db")
    r = occ("host", "remove", "db")
    assert r.returncode == 1 and "--force" in r.stderr
    r = occ("host", "remove", "db", "-f")
    assert r.returncode == 0 and "It was the default host" in r.stdout
    assert occ.hosts()["default_host"] is None
    assert occ("host", "list", "--names-only").stdout.split() == ["lab", "web1"]
    assert occ("host", "remove", "db", "-f").returncode == 1


def test_add_refuses_duplicates_unless_forced(occ: Occ) -> None:
    assert occ("host", "add", "a", "h1", "--no-verify").returncode == 0
    r = occ("host", "add", "a", "h2", "--no-verify")
    assert r.returncode == 1 and "already exists" in r.stderr
    assert occ.hosts()["hosts"]["a"]["hostname"] == "h1"
    assert occ("host", "add", "a", "h2", "--no-verify", "--force").returncode == 0
    assert occ.hosts()["hosts"]["a"]["hostname"] == "h2"


def test_host_commands_refuse_host_option(occ: Occ) -> None:
    r = occ("--host", "web1", "host", "list")
    assert r.returncode == 1 and "does not take --host" in r.stderr


def test_twenty_concurrent_adds_leave_twenty_hosts(occ: Occ) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "opencode_cloud", "host", "add",
                               f"h{i:02d}", f"10.0.0.{i + 1}", "--no-verify"], env=occ.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL) for i in range(20)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    names = occ("host", "list", "--names-only").stdout.split()
    assert names == [f"h{i:02d}" for i in range(20)]


# -- hostile input ------------------------------------------------------------------------
def _proxy(marker: Path) -> str:
    return f"-oProxyCommand=touch {marker}"


BAD_ADD = [
    ("name", lambda m: ["host", "add", _proxy(m), "h"]),
    ("name-local", lambda m: ["host", "add", "local", "h"]),
    ("hostname", lambda m: ["host", "add", "x", "--", _proxy(m)]),
    ("hostname-space", lambda m: ["host", "add", "x", f"h {_proxy(m)}"]),
    ("user", lambda m: ["host", "add", "x", "h", "-u", _proxy(m)]),
    ("user-shell", lambda m: ["host", "add", "x", "h", "-u", "a;touch " + str(m)]),
    ("port", lambda m: ["host", "add", "x", "h", "-p", _proxy(m)]),
    ("port-range", lambda m: ["host", "add", "x", "h", "-p", "70000"]),
    ("identity", lambda m: ["host", "add", "x", "h", "-i", _proxy(m)]),
    ("identity-token", lambda m: ["host", "add", "x", "h", "-i", "/k%h"]),
    ("jump", lambda m: ["host", "add", "x", "h", "-J", _proxy(m)]),
    ("jump-chain", lambda m: ["host", "add", "x", "h", "-J", f"ok@j,{_proxy(m)}"]),
    ("jump-port", lambda m: ["host", "add", "x", "h", "-J", "u@j:0"]),
    ("group", lambda m: ["host", "add", "x", "h", "-g", "a b"]),
    ("socket", lambda m: ["host", "add", "x", "h", "--docker-socket", "$(touch x)"]),
    ("description", lambda m: ["host", "add", "x", "h", "-d", "two\nlines"]),
]


@pytest.mark.parametrize(("case", "argv"), BAD_ADD, ids=[c for c, _ in BAD_ADD])
def test_bad_input_is_rejected_before_ssh(occ: Occ, case: str, argv) -> None:
    assert occ("host", "add", "good", "h.example", "--no-verify").returncode == 0
    before = occ.hosts_file.read_bytes()
    r = occ(*argv(occ.marker))  # verification on: ssh would run if validation let it through
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr
    assert occ.hosts_file.read_bytes() == before
    assert occ.ssh_calls() == []
    assert not occ.marker.exists()


BAD_EDIT = [
    ["--hostname", "-oProxyCommand=touch {m}"],
    ["-u", "-oProxyCommand=touch {m}"],
    ["-p", "0"],
    ["-i", "-oProxyCommand=touch {m}"],
    ["-J", "-oProxyCommand=touch {m}"],
    ["--add-group", "-x"],
    ["--docker-socket", "rel"],
]


@pytest.mark.parametrize("args", BAD_EDIT, ids=[a[0] for a in BAD_EDIT])
def test_bad_edit_is_rejected(occ: Occ, args: list[str]) -> None:
    assert occ("host", "add", "good", "h.example", "--no-verify").returncode == 0
    before = occ.hosts_file.read_bytes()
    r = occ("host", "edit", "good", *[a.format(m=occ.marker) for a in args])
    assert r.returncode != 0
    assert occ.hosts_file.read_bytes() == before
    assert occ.ssh_calls() == [] and not occ.marker.exists()


HAND_EDITED = [
    ("hostname", {"hostname": "-oProxyCommand=touch {m}"}),
    ("user", {"hostname": "h", "user": "-oProxyCommand=touch {m}"}),
    ("port", {"hostname": "h", "port": "22 -oProxyCommand=touch {m}"}),
    ("identity_file", {"hostname": "h", "identity_file": "-oProxyCommand=touch {m}"}),
    ("jump_host", {"hostname": "h", "jump_host": "-oProxyCommand=touch {m}"}),
    ("docker_socket", {"hostname": "h", "docker_socket": "/x;touch {m}"}),
    ("groups", {"hostname": "h", "groups": ["$(touch {m})"]}),
]


@pytest.mark.parametrize(("field", "entry"), HAND_EDITED, ids=[f for f, _ in HAND_EDITED])
def test_hand_edited_file_is_checked_on_every_load(occ: Occ, field: str, entry: dict) -> None:
    occ.hosts_file.parent.mkdir(parents=True)
    filled = json.loads(json.dumps(entry).replace("{m}", str(occ.marker)))
    text = json.dumps({"version": 1, "default_host": None, "hosts": {"web": filled}})
    occ.hosts_file.write_text(text)
    for argv in (["host", "test", "web"], ["host", "show", "web"], ["host", "list"],
                 ["host", "disconnect", "--all"], ["host", "add", "new", "h", "--no-verify"]):
        r = occ(*argv)
        assert r.returncode == 1, (argv, r.stdout)
        assert f"host 'web', field '{field}'" in r.stderr, r.stderr
        assert "Hint:" in r.stderr
    assert occ.hosts_file.read_text() == text
    assert occ.ssh_calls() == [] and not occ.marker.exists()


def test_hand_edited_bad_name(occ: Occ) -> None:
    occ.hosts_file.parent.mkdir(parents=True)
    occ.hosts_file.write_text(json.dumps({"hosts": {f"-oProxyCommand=touch {occ.marker}":
                                                    {"hostname": "h"}}}))
    r = occ("host", "test", f"-oProxyCommand=touch {occ.marker}")
    assert r.returncode != 0
    assert occ.ssh_calls() == [] and not occ.marker.exists()


# -- a fake ssh: the verification paths without a network ---------------------------------
FAKE_SSH = r"""#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
open(LOG, "a").write(json.dumps(args) + "\n")
if "-O" in args:
    sys.exit(255 if args[args.index("-O") + 1] == "check" else 0)
if "-N" in args:  # the master: pretend it authenticated
    sys.exit(0)
print("occ-probe-v1")
print("os_PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nos_ID=ubuntu\nwhoami=deploy")
print("cli=no\nengine=no\nsocket=no")
"""


@pytest.fixture
def fake_occ(tmp_path: Path) -> Iterator[Occ]:
    log = tmp_path / "ssh.log"
    script = FAKE_SSH.replace("LOG", repr(str(log)), 1).replace(
        "#!/usr/bin/env python3", f"#!{sys.executable}")
    env = make_env(tmp_path, script)
    yield Occ(env, tmp_path / "config" / "opencode-cloud" / "hosts.json", log,
              tmp_path / "PWNED", tmp_path)
    shutil.rmtree(env["OCC_SSH_CONTROL_DIR"], ignore_errors=True)


def test_add_saves_a_host_without_docker_with_a_mark_and_hint(fake_occ: Occ) -> None:
    r = fake_occ("host", "add", "bare", "bare.example", "-u", "deploy")
    assert r.returncode == 0, r.stderr
    assert "[bare] OS: Ubuntu 24.04 LTS" in r.stdout
    assert "Docker is not installed on the host" in r.stderr
    assert "apt-get install -y --no-install-recommends docker.io" in r.stdout
    assert fake_occ.hosts()["hosts"]["bare"]["docker_missing"] is True
    assert "bare (no Docker)" in fake_occ("host", "list").stdout
    r = fake_occ("host", "test", "bare")
    assert r.returncode == 1 and "[bare] Error: Docker is not installed" in r.stderr
    r = fake_occ("-q", "host", "test", "bare")
    assert r.returncode == 1 and r.stdout == ""
    calls = [json.loads(c) for c in fake_occ.ssh_calls()]
    assert calls and all(c[c.index("--") + 1] == "bare.example" for c in calls)
    assert all(c[c.index("-l") + 1] == "deploy" for c in calls)


def test_host_list_stays_light(occ: Occ) -> None:
    occ("host", "add", "a", "h", "--no-verify")
    code = (
        "import sys\n"
        "from opencode_cloud.cli.main import main\n"
        "try:\n    main(['host', 'list', '--json'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('docker', 'rich', 'pydantic') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=occ.env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


def test_the_hint_for_a_bad_entry_works_and_other_entries_stay_editable(occ: Occ) -> None:
    """One bad entry: the error's hint (occ host edit NAME -p VALUE) fixes it; editing or
    removing another host meanwhile works and writes the bad entry back as it was."""
    occ.hosts_file.parent.mkdir(parents=True)
    bad = {"hostname": "bad.example", "port": "22 -oProxyCommand=x"}
    occ.hosts_file.write_text(json.dumps({"version": 1, "default_host": None, "hosts": {
        "bad": bad, "good": {"hostname": "good.example"}, "other": {"hostname": "o.example"}}}))
    r = occ("host", "list")
    assert r.returncode == 1 and "occ host edit bad -p VALUE" in r.stderr
    assert occ("host", "edit", "good", "-d", "still editable").returncode == 0
    assert occ.hosts()["hosts"]["bad"] == bad  # untouched, byte for byte in JSON terms
    assert occ("host", "remove", "other", "--force").returncode == 0
    assert sorted(occ.hosts()["hosts"]) == ["bad", "good"]
    r = occ("host", "edit", "bad", "-p", "2222")  # what the hint said
    assert r.returncode == 0, r.stderr
    assert occ.hosts()["hosts"]["bad"]["port"] == 2222
    assert occ("host", "list").returncode == 0
    assert occ.ssh_calls() == []


def test_a_broken_entry_can_be_removed(occ: Occ) -> None:
    occ.hosts_file.parent.mkdir(parents=True)
    occ.hosts_file.write_text(json.dumps({"version": 1, "default_host": "bad", "hosts": {
        "bad": {"hostname": "b", "jump_host": "-oProxyCommand=x"}}}))
    r = occ("host", "remove", "bad", "--force")
    assert r.returncode == 0, r.stderr
    assert occ.hosts() == {"version": 1, "default_host": None, "hosts": {}}
