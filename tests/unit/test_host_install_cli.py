"""`occ host add/test/install-docker` around the installer, end to end as a subprocess with
a fake ssh (no network): what they do without a terminal, where nothing may be installed
without --yes, and with --yes where sudo would need a password nobody can type."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from .test_host_cli import Occ, make_env
except ImportError:
    from test_host_cli import Occ, make_env  # type: ignore[no-redef]

pytestmark = pytest.mark.unit

SAMPLE = (Path(__file__).parent / "os_release_samples" / "ubuntu-24.04").read_text()

# Answers occ's probe (Docker missing) and its detection (sudo wants a password); anything
# else (an install script) is logged and fails loudly.
FAKE_SSH = r"""#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
open(LOG, "a").write(json.dumps(args) + "\n")
if "-O" in args:
    sys.exit(255 if args[args.index("-O") + 1] == "check" else 0)
if "-N" in args:
    sys.exit(0)
remote = args[-1]
if "--occ--" in remote:
    sys.stdout.write(SAMPLE + "--occ--\ninit=systemd\nuid=1000\nuser=deploy\n"
                     "docker=missing\ndockerd=missing\nsudo=yes\nsudo_nopasswd=no\n")
    sys.exit(0)
if "occ-install" in remote:
    print("the install script must not run in these tests")
    sys.exit(99)
print("occ-probe-v1")
print("os_PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nos_ID=ubuntu\nwhoami=deploy")
print("cli=no\nengine=no\nsocket=no")
"""


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Occ]:
    log = tmp_path / "ssh.log"
    script = (FAKE_SSH.replace("LOG", repr(str(log)), 1).replace("SAMPLE", repr(SAMPLE), 1)
              .replace("#!/usr/bin/env python3", f"#!{sys.executable}"))
    env = make_env(tmp_path, script)
    yield Occ(env, tmp_path / "config" / "opencode-cloud" / "hosts.json", log,
              tmp_path / "PWNED", tmp_path)
    shutil.rmtree(env["OCC_SSH_CONTROL_DIR"], ignore_errors=True)


def remote_commands(occ: Occ) -> list[str]:
    calls = [json.loads(c) for c in occ.ssh_calls()]
    return [c[-1] for c in calls if "-O" not in c and "-N" not in c]


def test_add_without_a_terminal_saves_marks_and_names_the_command(fake: Occ) -> None:
    r = fake("host", "add", "bare", "bare.example", "-u", "deploy")
    assert r.returncode == 0, r.stderr
    assert "Added host 'bare'" in r.stdout
    assert "Docker is not installed on the host" in r.stderr
    assert "occ host install-docker bare" in r.stdout and "--yes" in r.stdout
    assert fake.hosts()["hosts"]["bare"]["docker_missing"] is True
    assert not any("--occ--" in c or "occ-install" in c for c in remote_commands(fake))
    shown = fake("host", "show", "bare").stdout
    assert "missing at the last check (occ host install-docker bare)" in shown


def test_install_docker_without_a_terminal_needs_yes(fake: Occ) -> None:
    assert fake("host", "add", "bare", "bare.example", "--no-verify").returncode == 0
    r = fake("host", "install-docker", "bare")
    assert r.returncode == 1
    assert "[bare] Error: Docker is not installed on bare, and there is no terminal" in r.stderr
    assert "occ host install-docker bare --yes" in r.stderr
    assert not any("--occ--" in c or "occ-install" in c for c in remote_commands(fake))


def test_yes_with_a_sudo_that_wants_a_password_and_no_terminal(fake: Occ) -> None:
    assert fake("host", "add", "bare", "bare.example", "--no-verify").returncode == 0
    for argv in (["host", "install-docker", "bare", "--yes"], ["host", "test", "bare", "--yes"],
                 ["host", "add", "bare", "bare.example", "--force", "--yes"]):
        r = fake(*argv)
        assert r.returncode == 1, (argv, r.stdout)
        assert "sudo on bare asks deploy for a password, and there is no terminal" in r.stderr
        assert "sudo apt-get install -y --no-install-recommends docker.io" in r.stderr
    assert not any("occ-install" in c for c in remote_commands(fake))
    assert fake.hosts()["hosts"]["bare"]["docker_missing"] is True  # add saved it, marked


def test_json_test_only_reports(fake: Occ) -> None:
    assert fake("host", "add", "bare", "bare.example", "--no-verify").returncode == 0
    r = fake("host", "test", "bare", "--json", "--yes")
    assert r.returncode == 1
    assert json.loads(r.stdout)["docker"]["state"] == "not installed"
    assert not any("--occ--" in c for c in remote_commands(fake))


def test_install_docker_is_documented(fake: Occ) -> None:
    r = fake("host", "install-docker", "--help")
    assert r.returncode == 0
    assert "finish a half-done install" in r.stdout
    assert "install-docker" in fake("host", "--help").stdout
