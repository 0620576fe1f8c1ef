"""The install script and the one command line that runs it, executed for real by a local
shell: every command of every plan is a stub that records the argv it receives, so these
tests prove what reaches each program on the host, quoting included, for every
distribution family (from real /etc/os-release samples) and every way of becoming root.

Nothing real is ever run: every command a plan names has a stub first on PATH, checked
before each run.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from opencode_cloud.distros.os_release import parse_os_release
from opencode_cloud.distros.plans import (
    MARKER,
    ROOT,
    SUDO,
    SUDO_PROMPT,
    InstallPlan,
    detect_command,
    install_script,
    parse_detect_output,
    plan_install,
    remote_install_command,
)

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).parent / "os_release_samples"
FAMILY_SAMPLES = ["debian-12", "ubuntu-24.04", "fedora-40", "rocky-9", "rhel-9", "amzn-2",
                  "amzn-2023", "alpine-3.20", "arch", "opensuse-leap-15.6", "sles-15"]
NASTY_USERS = ["o'brien", "a b", "$(touch PWNED)", "x;touch PWNED", "`touch PWNED`", "-rf",
               "\"quoted\"", "back\\slash", "new\nline", "*"]

STUB = r"""#!/bin/sh
# records its name, its arguments (one per line, NUL-free) and DEBIAN_FRONTEND
{ printf '%s\n' "---" "$(basename "$0")" "DEBIAN_FRONTEND=${DEBIAN_FRONTEND-}";
  for a in "$@"; do printf 'arg:%s\n' "$(printf '%s' "$a" | od -An -tx1 | tr -d ' \n')"; done
} >> "$STUB_LOG"
name=$(basename "$0")
case " ${STUB_FAIL-} " in *" $name "*) echo "$name went wrong"; exit 7 ;; esac
echo "$name says hello"
"""

SUDO_STUB = r"""#!/bin/sh
# a sudo that records its options and runs the command after --
{ printf '%s\n' "---" "sudo" "DEBIAN_FRONTEND=${DEBIAN_FRONTEND-}";
  for a in "$@"; do printf 'arg:%s\n' "$(printf '%s' "$a" | od -An -tx1 | tr -d ' \n')"; done
} >> "$STUB_LOG"
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""


def sample(name: str):
    return parse_os_release((SAMPLES / name).read_text())


def plan_commands(plan: InstallPlan) -> set[str]:
    return {word for step in plan.steps for word in (step.argv[0], *step.unless[:1])}


def read_log(path: Path) -> list[tuple[str, str, list[str]]]:
    """(program, DEBIAN_FRONTEND, argv) of every stub call, in order."""
    calls: list[tuple[str, str, list[str]]] = []
    if not path.exists():
        return calls
    for block in path.read_text().split("---\n")[1:]:
        name, frontend, *args = block.rstrip("\n").split("\n")
        argv = [bytes.fromhex(a[len("arg:"):]).decode() for a in args]
        calls.append((name, frontend.partition("=")[2], argv))
    return calls


class Host:
    """A stand-in for the remote login shell: stubs for every command, a log, a marker."""

    def __init__(self, tmp: Path, commands: set[str]) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name in commands | {"sudo"}:
            (self.bin / name).write_text(SUDO_STUB if name == "sudo" else STUB)
            (self.bin / name).chmod(0o755)
        self.log = tmp / "calls.log"
        self.cwd = tmp

    def run(self, command: str, shell: str = "sh", fail: str = "") -> tuple[int, list[str]]:
        for name in os.listdir(self.bin):  # every command is a stub: nothing real runs
            assert (self.bin / name).read_text() in (STUB, SUDO_STUB)
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "STUB_LOG": str(self.log),
               "STUB_FAIL": fail, "HOME": str(self.cwd)}
        proc = subprocess.run([shell, "-c", command], env=env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=30)
        return proc.returncode, (proc.stdout + proc.stderr).splitlines()


@pytest.mark.parametrize("name", FAMILY_SAMPLES)
@pytest.mark.parametrize("privilege", [ROOT, SUDO, SUDO_PROMPT])
def test_every_step_reaches_its_program_exactly(tmp_path: Path, name: str,
                                                privilege: str) -> None:
    plan = plan_install(sample(name), "deploy", "systemd", privilege == ROOT)
    host = Host(tmp_path, plan_commands(plan))
    status, output = host.run(remote_install_command(plan, privilege))
    assert status == 0, output
    calls = read_log(host.log)
    if privilege != ROOT:  # one sudo for the whole script, so at most one password prompt
        sudo_calls = [c for c in calls if c[0] == "sudo"]
        assert len(sudo_calls) == 1
        flags = sudo_calls[0][2][: sudo_calls[0][2].index("--")]
        assert flags == (["-n"] if privilege == SUDO else ["-S", "-p", "[sudo] password for %u: "])
        calls = [c for c in calls if c[0] != "sudo"]
    expected = []
    for step in plan.steps:
        env = dict(step.env)
        expected.append((step.argv[0], env.get("DEBIAN_FRONTEND", ""), list(step.argv[1:])))
    assert calls == expected
    markers = [line for line in output if line.startswith(MARKER)]
    assert markers == [f"{MARKER} step {n}" for n in range(1, len(plan.steps) + 1)] \
        + [f"{MARKER} done"]


@pytest.mark.parametrize("user", NASTY_USERS)
@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("name", ["debian-12", "alpine-3.20"])
def test_a_user_name_reaches_the_group_command_as_one_word(tmp_path: Path, user: str,
                                                           shell: str, name: str) -> None:
    # Users are validated long before this (hosts.validation); the plan still never trusts.
    plan = plan_install(sample(name), user, "openrc", False)
    host = Host(tmp_path, plan_commands(plan))
    status, output = host.run(remote_install_command(plan, SUDO), shell=shell)
    assert status == 0, output
    group = [argv for program, _, argv in read_log(host.log)
             if program in ("usermod", "addgroup")]
    assert group in ([["-aG", "docker", user]], [[user, "docker"]])
    assert not (tmp_path / "PWNED").exists()


def test_a_failing_step_stops_the_script_and_says_which(tmp_path: Path) -> None:
    plan = plan_install(sample("debian-12"), "deploy", "sysv", False)
    host = Host(tmp_path, plan_commands(plan))
    status, output = host.run(remote_install_command(plan, SUDO), fail="apt-get")
    assert status == 7
    assert f"{MARKER} failed 2 7" in output  # apt-get update is step 2
    assert "apt-get went wrong" in output
    assert [c[0] for c in read_log(host.log)] == ["sudo", "dpkg", "apt-get"]
    assert f"{MARKER} done" not in output


def test_a_step_with_a_check_is_skipped_when_the_check_succeeds(tmp_path: Path) -> None:
    plan = plan_install(sample("alpine-3.20"), "deploy", "openrc", False)
    start = next(n for n, step in enumerate(plan.steps, 1) if step.unless)
    host = Host(tmp_path, plan_commands(plan))
    status, output = host.run(remote_install_command(plan, ROOT))
    assert status == 0 and f"{MARKER} skipped {start}" in output
    assert ["status"] in [argv[1:] for p, _, argv in read_log(host.log) if p == "rc-service"]
    assert ["docker", "restart"] not in [argv for p, _, argv in read_log(host.log)]
    # the check fails (OpenRC: stopped or crashed): the service is restarted
    host.log.unlink()
    status, output = host.run(remote_install_command(plan, ROOT), fail="rc-service")
    assert f"{MARKER} skipped {start}" not in output
    assert status == 7  # the stub fails the restart too, and that is reported
    assert f"{MARKER} failed {start} 7" in output


def test_nothing_is_read_from_the_terminal_and_errors_are_kept() -> None:
    script = install_script(plan_install(sample("alpine-3.20"), "u", "openrc", False))
    lines = script.splitlines()
    assert lines[0] == "exec 2>&1"  # a step's errors arrive in order with its output
    steps = [line for line in lines if not line.startswith(("exec ", "PATH=", "export ",
                                                             "echo "))]
    assert len(steps) == 4
    for line in steps:  # sudo's password is read from the session's input, nothing else
        assert line.count("</dev/null") == (2 if line.startswith("if ") else 1), line


def test_sudo_prompt_is_one_quoted_word(tmp_path: Path) -> None:
    plan = plan_install(sample("debian-12"), "u", "sysv", False)
    words = shlex.split(remote_install_command(plan, SUDO_PROMPT, "pass for %u on 'x': "))
    assert words[:4] == ["sudo", "-S", "-p", "pass for %u on 'x': "]
    assert words[4:7] == ["--", "sh", "-c"]
    with pytest.raises(ValueError):
        remote_install_command(plan, "doas")


def test_the_detect_command_runs_and_is_parsed(tmp_path: Path) -> None:
    """The real detection script, here, by sh: every fact it reports parses."""
    proc = subprocess.run(["sh", "-c", detect_command()], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    facts = parse_detect_output(proc.stdout)
    assert facts.os_release.id  # this machine's own os-release
    assert facts.uid == os.getuid()
    assert facts.user and facts.init in ("systemd", "openrc", "sysv")
    assert json.dumps(facts.os_release.pretty_name)
