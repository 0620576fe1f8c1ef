"""`occ host export` / `occ host import` end to end as a subprocess, without any remote host.

Two isolated config folders stand for two team members' machines. An ``ssh`` first on PATH
logs every call, so tests can assert that an import never connected (and that a hostile
file never got near ssh); injected ProxyCommands would touch a marker file.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    from .test_host_cli import Occ, make_env
    from .test_host_validation import HOSTILE
except ImportError:
    from test_host_cli import Occ, make_env  # type: ignore[no-redef]
    from test_host_validation import HOSTILE  # type: ignore[no-redef]

pytestmark = pytest.mark.unit

LEFT_OUT = "identity files left out: set them with occ host edit NAME -i KEY"

# A fake ssh: logs its arguments; the master of "down.example" is refused like a closed
# port, every other host answers occ's probe with "Docker is not installed".
FAKE_SSH = r"""#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
open(LOG, "a").write(json.dumps(args) + "\n")
target = args[args.index("--") + 1] if "--" in args else ""
if "-O" in args:
    sys.exit(255 if args[args.index("-O") + 1] == "check" else 0)
if target == "down.example":
    sys.stderr.write("ssh: connect to host down.example port 22: Connection refused\n")
    sys.exit(255)
if "-N" in args:
    sys.exit(0)
print("occ-probe-v1")
print("os_PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nos_ID=ubuntu\nwhoami=deploy")
print("cli=no\nengine=no\nsocket=no")
"""


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Callable[[str], Occ]]:
    """``machine("alice")``: an occ with its own config folder and a logging fake ssh."""
    made: list[Occ] = []

    def make(name: str) -> Occ:
        home = tmp_path / name
        home.mkdir()
        log = home / "ssh.log"
        script = FAKE_SSH.replace("LOG", repr(str(log)), 1).replace(
            "#!/usr/bin/env python3", f"#!{sys.executable}")
        env = make_env(home, script)
        occ = Occ(env, home / "config" / "opencode-cloud" / "hosts.json", log,
                  home / "PWNED", home)
        made.append(occ)
        return occ

    yield make
    for occ in made:
        shutil.rmtree(occ.env["OCC_SSH_CONTROL_DIR"], ignore_errors=True)


def ok(r) -> None:
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def add_fleet(occ: Occ) -> None:
    """Three hosts with every kind of field, one marked as lacking Docker."""
    key = occ.tmp / "id_web"
    key.write_text("not really a key\n")
    ok(occ("host", "add", "web1", "web1.example.com", "-u", "deploy", "-p", "2222",
           "-i", str(key), "-J", "ops@bastion:22", "-g", "prod", "-g", "eu",
           "-d", "Main box", "--docker-socket", "/run/docker.sock", "--no-verify",
           "--default"))
    ok(occ("host", "add", "db", "10.0.0.5", "-g", "prod", "-i", "~/.ssh/id_db",
           "--no-verify"))
    ok(occ("host", "edit", "db", "--set", "opencode_web_port=3100",
           "--set", "memory_limit=8g", "--set", "extra_ca_certs=/etc/ssl/corp.pem"))
    ok(occ("host", "add", "lab", "::1", "-g", "lab", "--no-verify"))
    data = occ.hosts()
    data["hosts"]["lab"]["docker_missing"] = True  # what `host test` finds on a bare host
    occ.hosts_file.write_text(json.dumps(data))


def write(occ: Occ, document: object, name: str = "team.json") -> Path:
    path = occ.tmp / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


# -- export then import ---------------------------------------------------------------------
def test_export_then_import_reproduces_the_hosts(machine) -> None:
    alice, bob = machine("alice"), machine("bob")
    add_fleet(alice)
    theirs = alice.hosts()["hosts"]

    r = alice("host", "export", "-o", str(alice.tmp / "team.json"))
    ok(r)
    assert "Exported 3 hosts to" in r.stdout
    assert LEFT_OUT in r.stderr and "db, web1" in r.stderr
    assert "extra_ca_certs settings left out" in r.stderr
    team = alice.tmp / "team.json"
    assert stat.S_IMODE(team.stat().st_mode) == 0o600
    document = json.loads(team.read_text())
    assert set(document) == {"version", "default_host", "hosts"}
    assert document["version"] == 1 and document["default_host"] == "web1"
    text = team.read_text()
    assert "id_web" not in text and "id_db" not in text and "corp.pem" not in text
    assert "docker_missing" not in text
    assert document["hosts"]["db"]["settings"] == {"opencode_web_port": 3100,
                                                   "memory_limit": "8g"}
    # stdout gives the same document; the remarks stay on stderr
    r = alice("host", "export")
    ok(r)
    assert json.loads(r.stdout) == document and LEFT_OUT in r.stderr

    r = bob("host", "import", str(team))
    ok(r)
    for name in ("db", "lab", "web1"):
        assert f"Added host '{name}'" in r.stdout
    assert "3 added" in r.stdout
    assert "names 'web1' as its default host" in r.stdout
    assert bob.ssh_calls() == []  # import never connects unless asked to
    mine = bob.hosts()
    assert mine["default_host"] is None  # bob's default is bob's
    expected = json.loads(json.dumps(theirs))
    for entry in expected.values():
        entry["identity_file"] = None
        entry.pop("docker_missing", None)
    del expected["db"]["settings"]["extra_ca_certs"]
    assert mine["hosts"] == expected
    assert stat.S_IMODE(bob.hosts_file.stat().st_mode) == 0o600

    # with --with-identity-files, everything but the machine's own finding travels
    carol = machine("carol")
    ok(alice("host", "export", "--with-identity-files", "-o", str(alice.tmp / "full.json")))
    r = carol("host", "import", str(alice.tmp / "full.json"), "--no-verify")
    ok(r)
    expected = json.loads(json.dumps(theirs))
    expected["lab"].pop("docker_missing")
    assert carol.hosts()["hosts"] == expected
    assert carol.ssh_calls() == []
    assert "does not exist here" in r.stderr  # ~/.ssh/id_db is not on carol's machine


def test_export_selects_groups_and_keeps_the_default_only_if_exported(machine) -> None:
    alice = machine("alice")
    add_fleet(alice)
    lab = json.loads(alice("host", "export", "-g", "lab").stdout)
    assert list(lab["hosts"]) == ["lab"] and lab["default_host"] is None
    union = json.loads(alice("host", "export", "-g", "lab", "-g", "eu").stdout)
    assert list(union["hosts"]) == ["lab", "web1"] and union["default_host"] == "web1"
    r = alice("host", "export", "-g", "nope")
    assert r.returncode == 1 and "no host is in group 'nope'" in r.stderr
    assert r.stdout == ""
    r = machine("empty")("host", "export")
    assert r.returncode == 1 and "no hosts in hosts.json" in r.stderr


def test_export_never_overwrites_a_file_unless_forced(machine) -> None:
    alice = machine("alice")
    add_fleet(alice)
    target = alice.tmp / "out.json"
    target.write_text("precious\n")
    folder_mode = stat.S_IMODE(alice.tmp.stat().st_mode)
    r = alice("host", "export", "-o", str(target))
    assert r.returncode == 1 and "already exists" in r.stderr and "--force" in r.stderr
    assert target.read_text() == "precious\n"
    ok(alice("host", "export", "-o", str(target), "--force"))
    assert list(json.loads(target.read_text())["hosts"]) == ["db", "lab", "web1"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    r = alice("host", "export", "-o", str(alice.tmp / "no-such-dir" / "x.json"))
    assert r.returncode == 1 and "cannot write" in r.stderr and "Traceback" not in r.stderr
    r = alice("host", "export", "-o", str(alice.tmp))
    assert r.returncode == 1 and "is a folder" in r.stderr
    assert [p.name for p in alice.tmp.iterdir() if p.name.endswith(".tmp")] == []
    # the user's folder keeps its mode (occ makes only its own folders 0700)
    assert stat.S_IMODE(alice.tmp.stat().st_mode) == folder_mode


def test_export_warns_about_container_env(machine) -> None:
    alice = machine("alice")
    ok(alice("host", "add", "a", "h.example", "--no-verify"))
    ok(alice("host", "edit", "a", "--set", 'container_env=["API_KEY=sk-1"]'))
    r = alice("host", "export")
    ok(r)
    assert json.loads(r.stdout)["hosts"]["a"]["settings"] == {"container_env": ["API_KEY=sk-1"]}
    assert "container_env settings of a are in the export" in r.stderr
    assert LEFT_OUT not in r.stderr  # no identity file, nothing to say


# -- hostile and broken files ---------------------------------------------------------------
def setup_victim(occ: Occ) -> bytes:
    ok(occ("host", "add", "good", "h.example", "-u", "deploy", "--no-verify", "--default"))
    return occ.hosts_file.read_bytes()


def assert_refused(occ: Occ, before: bytes, r, *needles: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("Error: "), r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr
    assert "Nothing was imported" in r.stderr or "nothing was imported" in r.stderr
    assert occ.hosts_file.read_bytes() == before
    assert occ.ssh_calls() == [] and not occ.marker.exists()


HOSTILE_FIELDS = {
    "hostname": lambda bad: {"hostname": bad},
    "user": lambda bad: {"hostname": "h", "user": bad},
    "identity_file": lambda bad: {"hostname": "h", "identity_file": bad},
    "jump_host": lambda bad: {"hostname": "h", "jump_host": bad},
    "docker_socket": lambda bad: {"hostname": "h", "docker_socket": bad},
    "groups": lambda bad: {"hostname": "h", "groups": ["ok", bad]},
    "port": lambda bad: {"hostname": "h", "port": bad},
    "settings": lambda bad: {"hostname": "h", "settings": {"bind_address": bad}},
}


@pytest.mark.parametrize("field", list(HOSTILE_FIELDS))
def test_hostile_values_are_refused_whole(machine, field: str) -> None:
    victim = machine("victim")
    before = setup_victim(victim)
    for bad in HOSTILE:
        bad = bad.replace("/tmp/pwned", str(victim.marker))
        document = {"version": 1, "hosts": {
            "fine": {"hostname": "fine.example"},  # a good entry is not imported either
            "bad": HOSTILE_FIELDS[field](bad)}}
        path = write(victim, document)
        # --verify and --replace: would connect, and overwrite, if validation let it through
        r = victim("host", "import", str(path), "--verify", "--replace")
        assert_refused(victim, before, r, "host 'bad', field " f"'{field}'")


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_host_names_are_refused(machine, bad: str) -> None:
    victim = machine("victim")
    before = setup_victim(victim)
    path = write(victim, {"hosts": {"fine": {"hostname": "f"}, bad: {"hostname": "h"}}})
    r = victim("host", "import", str(path), "--verify")
    assert_refused(victim, before, r, f"host '{bad}'" if "\n" not in bad else "host '")


BROKEN = [
    ("not-json", "nope", "is not valid JSON"),
    ("empty", "", "is not valid JSON"),
    ("truncated", '{"hosts": {"a": {"hostname": "h"', "is not valid JSON"),
    ("array", "[]", "must hold a JSON object"),
    ("unknown-top", {"hosts": {}, "proxy": 1}, "unknown top-level field 'proxy'"),
    ("unknown-field", {"hosts": {"a": {"hostname": "h", "ProxyCommand": "sh"}}},
     "host 'a' has an unknown field 'ProxyCommand'"),
    ("no-hostname", {"hosts": {"a": {"user": "u"}}}, "host 'a' has no 'hostname'"),
    ("entry-not-object", {"hosts": {"a": "h"}}, "host 'a' must be an object"),
    ("hosts-not-object", {"hosts": ["a"]}, "'hosts' must be an object"),
    ("version", {"version": 2, "hosts": {"a": {"hostname": "h"}}}, "version 2"),
    ("default-elsewhere", {"default_host": "good", "hosts": {"a": {"hostname": "h"}}},
     "default_host 'good' is not a host in this file"),
    ("no-hosts", {"version": 1, "hosts": {}}, "holds no hosts"),
    ("reserved-name", {"hosts": {"local": {"hostname": "h"}}}, "host 'local'"),
    ("bad-setting", {"hosts": {"a": {"hostname": "h", "settings": {"nope": 1}}}},
     "host 'a', field 'settings'"),
    ("port-text", {"hosts": {"a": {"hostname": "h", "port": "22"}}}, "host 'a', field 'port'"),
    ("docker-missing-text", {"hosts": {"a": {"hostname": "h", "docker_missing": "yes"}}},
     "host 'a', field 'docker_missing'"),
    ("duplicate-name", '{"hosts": {"a": {"hostname": "h1"}, "a": {"hostname": "h2"}}}',
     "host 'a' appears twice"),
    ("duplicate-field",
     '{"hosts": {"a": {"hostname": "h", "user": "-oProxyCommand=sh", "user": "deploy"}}}',
     "host 'a', field 'user' appears twice"),
    ("duplicate-top", '{"hosts": {"a": {"hostname": "h"}}, "hosts": {}}',
     "the top-level field 'hosts' appears twice"),
    ("duplicate-setting",
     '{"hosts": {"a": {"hostname": "h", "settings": {"memory_limit": "1g", '
     '"memory_limit": "2g"}}}}', "host 'a', field 'settings': 'memory_limit' appears twice"),
    ("duplicate-jsonc", '{"hosts": {"a": {"hostname": "h"}, // a comment\n'
     '"a": {"hostname": "h2"},}}', "host 'a' appears twice"),
    ("deep", '{"hosts": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
]


@pytest.mark.parametrize(("case", "content", "needle"), BROKEN, ids=[c for c, _, _ in BROKEN])
def test_broken_files_are_refused_whole(machine, case: str, content, needle: str) -> None:
    victim = machine("victim")
    before = setup_victim(victim)
    r = victim("host", "import", str(write(victim, content)), "--verify")
    assert_refused(victim, before, r, needle)
    assert "Hint:" in r.stderr


def test_unreadable_files_are_refused(machine) -> None:
    victim = machine("victim")
    before = setup_victim(victim)
    r = victim("host", "import", str(victim.tmp / "missing.json"))
    assert_refused(victim, before, r, "cannot read", "missing.json")
    r = victim("host", "import", str(victim.tmp))
    assert_refused(victim, before, r, "cannot read")
    binary = victim.tmp / "binary.json"
    binary.write_bytes(b'{"hosts": {"a": {"hostname": "h\xff"}}}')
    r = victim("host", "import", str(binary))
    assert_refused(victim, before, r, "is not UTF-8 text")


def test_jsonc_and_stdin_are_read_like_hosts_json(machine) -> None:
    bob = machine("bob")
    text = '{\n  // the team\'s box\n  "hosts": {"a": {"hostname": "a.example",},},\n}\n'
    r = bob("host", "import", "-", input=text)
    ok(r)
    assert "Added host 'a'" in r.stdout and "from <stdin>" in r.stdout
    assert bob.hosts()["hosts"]["a"]["hostname"] == "a.example"


# -- names that exist -----------------------------------------------------------------------
def test_existing_names_refused_skipped_or_replaced(machine) -> None:
    bob = machine("bob")
    key = bob.tmp / "id_bob"
    key.write_text("k\n")
    ok(bob("host", "add", "web1", "old.example", "-u", "bob", "-i", str(key), "-g", "mine",
           "--no-verify", "--default"))
    ok(bob("host", "edit", "web1", "--set", "extra_ca_certs=/etc/ssl/bob.pem"))
    ok(bob("host", "add", "same", "same.example", "--no-verify"))
    before = bob.hosts_file.read_bytes()
    team = write(bob, {"version": 1, "default_host": "new", "hosts": {
        "web1": {"hostname": "web1.example.com", "user": "deploy", "groups": ["prod"]},
        "same": {"hostname": "same.example"},
        "new": {"hostname": "new.example"}}})

    r = bob("host", "import", str(team))
    assert_refused(bob, before, r, "host 'same' already exists in hosts.json",
                   "(and 1 more: web1)", "--skip-existing", "--replace")

    r = bob("host", "import", str(team), "--replace", "--skip-existing")
    assert r.returncode == 2 and "not both" in r.stderr and "Traceback" not in r.stderr
    assert bob.hosts_file.read_bytes() == before

    r = bob("host", "import", str(team), "--skip-existing")
    ok(r)
    assert "Added host 'new' (new.example)." in r.stdout
    assert "Skipped host 'web1'" in r.stdout
    assert "Host 'same' is already here with the same values." in r.stdout
    assert "1 added, 1 skipped, 1 unchanged" in r.stdout
    hosts = bob.hosts()
    assert hosts["hosts"]["web1"]["hostname"] == "old.example"  # kept bob's
    assert hosts["default_host"] == "web1"  # the file's default is not taken
    assert "occ host default new" in r.stdout

    r = bob("host", "import", str(team), "--replace")
    ok(r)
    assert "Replaced host 'web1' (deploy@web1.example.com); kept this machine's identity " \
        "file and extra_ca_certs setting." in r.stdout
    assert "1 replaced, 2 unchanged" in r.stdout
    web1 = bob.hosts()["hosts"]["web1"]
    assert (web1["hostname"], web1["user"], web1["groups"]) == (
        "web1.example.com", "deploy", ["prod"])
    assert web1["identity_file"] == str(key)
    assert web1["settings"] == {"extra_ca_certs": "/etc/ssl/bob.pem"}
    assert bob.hosts()["default_host"] == "web1"

    # nothing to do: hosts.json is not rewritten at all
    settled = bob.hosts_file.read_bytes()
    mtime = bob.hosts_file.stat().st_mtime_ns
    r = bob("host", "import", str(team), "--replace")
    ok(r)
    assert "3 unchanged. hosts.json is unchanged." in r.stdout
    assert bob.hosts_file.read_bytes() == settled and bob.hosts_file.stat().st_mtime_ns == mtime
    assert bob.ssh_calls() == []


def test_replace_keeps_the_docker_finding_only_for_the_same_place(machine) -> None:
    bob = machine("bob")
    ok(bob("host", "add", "a", "a.example", "--no-verify"))
    ok(bob("host", "add", "b", "b.example", "--no-verify"))
    data = bob.hosts()
    for name in ("a", "b"):
        data["hosts"][name]["docker_missing"] = True
    bob.hosts_file.write_text(json.dumps(data))
    team = write(bob, {"hosts": {"a": {"hostname": "a.example", "description": "x"},
                                 "b": {"hostname": "b2.example"}}})
    ok(bob("host", "import", str(team), "--replace"))
    hosts = bob.hosts()["hosts"]
    assert hosts["a"]["docker_missing"] is True and hosts["a"]["description"] == "x"
    assert "docker_missing" not in hosts["b"]  # a new place: the old finding is gone


# -- verification ---------------------------------------------------------------------------
def test_no_verify_and_the_default_never_connect(machine) -> None:
    bob = machine("bob")
    team = write(bob, {"hosts": {"a": {"hostname": "down.example"}}})
    ok(bob("host", "import", str(team), "--no-verify"))
    ok(bob("host", "import", str(write(bob, {"hosts": {"b": {"hostname": "b.example"}}},
                                         "b.json"))))
    assert sorted(bob.hosts()["hosts"]) == ["a", "b"]
    assert bob.ssh_calls() == []


def test_verify_checks_every_new_host_and_marks_missing_docker(machine) -> None:
    bob = machine("bob")
    team = write(bob, {"hosts": {f"h{i}": {"hostname": f"h{i}.example", "user": "deploy"}
                                 for i in range(3)}})
    r = bob("host", "import", str(team), "--verify")
    ok(r)
    assert "3 added" in r.stdout
    targets = {json.loads(c)[json.loads(c).index("--") + 1] for c in bob.ssh_calls()}
    assert targets == {"h0.example", "h1.example", "h2.example"}
    assert all(entry["docker_missing"] is True for entry in bob.hosts()["hosts"].values())


def test_verify_refuses_the_whole_import_when_ssh_fails(machine) -> None:
    bob = machine("bob")
    before = setup_victim(bob)
    team = write(bob, {"hosts": {"up": {"hostname": "up.example"},
                                 "down": {"hostname": "down.example"}}})
    r = bob("host", "import", str(team), "--verify")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "SSH failed on 1 of 2 hosts (down): nothing was imported" in r.stderr
    assert "--no-verify" in r.stderr
    assert bob.hosts_file.read_bytes() == before
    assert "down.example" in "".join(bob.ssh_calls())


def test_help_says_what_import_connects_to(machine) -> None:
    r = machine("bob")("host", "import", "--help")
    ok(r)
    text = " ".join(r.stdout.split())
    assert "By default import does not connect anywhere" in text
    assert "--verify / --no-verify" in text
    assert "host export" in machine("alice")("host", "--help").stdout
