"""Installing or starting Docker on this machine: the remote plans, run by the local runner.

The runner tests run real processes (sh, and a stand-in for sudo on PATH that records how
it was called and then runs the command, or asks for a password first, as sudo -S does);
no step touches the system. The plan tests use this machine's own detection answer.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from opencode_cloud.distros.os_release import parse_os_release
from opencode_cloud.distros.plans import (
    MANUAL_DOCKERD,
    ROOT,
    SUDO,
    SUDO_PROMPT,
    InstallPlan,
    Step,
    detect_command,
    parse_detect_output,
    plan_install,
    remote_install_command,
)
from opencode_cloud.errors import OccError
from opencode_cloud.install import installer
from opencode_cloud.install.installer import (
    DockerInstallFailed,
    DockerInstallNotConfirmed,
    choose_privilege,
    describe_plan,
    offer_docker_install,
    plan_for,
    run_plan,
)
from opencode_cloud.install.local import LocalMachine, offer_local_docker_install, socket_of
from tests.unit.fake_docker import RecordingReporter

pytestmark = pytest.mark.unit

ME = pwd.getpwuid(os.geteuid()).pw_name
DEBIAN = parse_os_release('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')

# sudo's stand-in: logs its arguments, then runs what follows "--" (after reading and
# checking a password when given -S, with sudo's prompt on stderr and no newline).
FAKE_SUDO = r"""#!/bin/sh
printf '%s\n' "$*" >> "$SUDO_LOG"
prompt=''
while [ "$1" != "--" ]; do
  case "$1" in
    -S) ask=yes ;;
    -p) shift; prompt=$1 ;;
  esac
  shift
done
shift
if [ "$ask" = yes ]; then
  printf '%s' "$prompt" | sed "s/%u/$(id -un)/" >&2
  read -r password
  [ "$password" = right ] || { echo 'Sorry, try again.' >&2; exit 1; }
fi
exec "$@"
"""


def harmless_plan(marker: Path) -> InstallPlan:
    return InstallPlan("debian", "Test OS", (
        Step(("echo", "step one says hi"), "say hi"),
        Step(("touch", str(marker)), "leave a mark"),
    ))


@pytest.fixture
def fake_sudo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text(FAKE_SUDO)
    sudo.chmod(0o755)
    log = tmp_path / "sudo.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SUDO_LOG", str(log))
    return log


# -- the plan ---------------------------------------------------------------------------------
def test_this_machines_detection_answer_gives_a_plan_for_this_machine() -> None:
    machine = LocalMachine("/nonexistent/docker.sock")
    proc = machine.run(detect_command(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    facts = parse_detect_output(proc.stdout.decode())
    assert facts.user == ME and facts.uid == os.geteuid()
    assert facts.init in {"systemd", "openrc", "sysv", "none"}
    assert facts.pid1  # the name of process 1, for the no-init explanation
    plan = plan_for(facts, "local")
    lines = describe_plan(plan, facts, "local", ROOT)
    assert lines[0].startswith(f"System: {facts.os_release.pretty_name}")
    assert f"; user: {ME}" in lines[0]  # not "SSH user"
    assert "this machine" in lines[1]
    assert machine.host.config.effective_docker_socket == "/nonexistent/docker.sock"
    assert machine.docker_forward("/nonexistent/docker.sock") == "/nonexistent/docker.sock"


def test_without_an_init_system_the_plan_starts_nothing_and_says_how() -> None:
    plan = plan_install(DEBIAN, "me", "none", False)
    assert not any(s.argv[0] in {"service", "systemctl", "rc-service"} for s in plan.steps)
    assert plan.manual_start == MANUAL_DOCKERD
    facts = parse_detect_output("ID=debian\n--occ--\ninit=none\nuid=1000\nuser=me\n"
                                "pid1=process_api\n")
    text = "\n".join(describe_plan(plan, facts, "local", SUDO))
    assert "This machine has no init system (process 1 is process_api)" in text
    assert MANUAL_DOCKERD in text
    # the init script's step says what to do when it fails for want of an init system,
    # and where process 1 is no init the plan says so before asking
    sysv = plan_install(DEBIAN, "me", "sysv", False)
    start = next(s for s in sysv.steps if s.argv[:1] == ("service",))
    assert MANUAL_DOCKERD in start.if_failed
    for pid1, noted in (("process_api", True), ("init", False), ("systemd", False)):
        facts = parse_detect_output(f"ID=debian\n--occ--\ninit=sysv\npid1={pid1}\n")
        text = "\n".join(describe_plan(sysv, facts, "local", SUDO))
        assert (f"Process 1 on this machine is {pid1}, not an init system" in text) is noted


def test_nothing_installed_and_no_init_system_explains_without_asking(
        monkeypatch: pytest.MonkeyPatch) -> None:
    machine = LocalMachine("/nonexistent/docker.sock")
    # Alpine in a container: installed, root, nothing that starts services: no step is left
    answer = ("ID=alpine\nPRETTY_NAME=Alpine\n--occ--\ninit=none\nuid=0\nuser=root\n"
              "pid1=bash\ndockerd=installed\nsudo=no\n")
    monkeypatch.setattr(machine, "run", lambda *a, **k: subprocess.CompletedProcess(
        [], 0, answer.encode(), b""))
    reporter = RecordingReporter(interactive=True)
    with pytest.raises(DockerInstallFailed) as caught:
        offer_docker_install(machine, machine.host, reporter, assume_yes=False,
                             confirm=lambda q: pytest.fail(f"asked {q!r}"))
    assert "nothing there starts its daemon: there is no init system (process 1 is " \
           "bash)" in caught.value.message
    assert f"sh -c '{MANUAL_DOCKERD}'" in caught.value.hint
    assert caught.value.host is None  # printed without a [local] prefix


def test_how_this_machine_becomes_root() -> None:
    facts = parse_detect_output("ID=debian\n--occ--\nuid=1000\nuser=me\nsudo=no\n")
    with pytest.raises(OccError) as caught:
        choose_privilege(facts, "local", interactive=True)
    assert "me is not root on this machine, and sudo is not installed" in caught.value.message
    assert "Run 'occ host install-docker local' as root" in caught.value.hint
    assert "occ host edit" not in caught.value.hint


# -- the runner ---------------------------------------------------------------------------------
def test_the_runner_as_root_runs_the_script_here_without_sudo(tmp_path: Path,
                                                               fake_sudo: Path) -> None:
    marker = tmp_path / "mark"
    plan = harmless_plan(marker)
    assert remote_install_command(plan, ROOT).startswith("sh -c ")
    reporter = RecordingReporter()
    tracker = run_plan(LocalMachine(), plan, ROOT, reporter)
    assert tracker.done and marker.exists()
    assert "step one says hi" in reporter.of("output")
    assert "(1/2) say hi: echo 'step one says hi'" in reporter.of("info")
    assert not fake_sudo.exists()  # sudo never ran


def test_the_runner_through_sudo_never_lets_it_ask(tmp_path: Path, fake_sudo: Path) -> None:
    marker = tmp_path / "mark"
    tracker = run_plan(LocalMachine(), harmless_plan(marker), SUDO, RecordingReporter())
    assert tracker.done and marker.exists()
    assert fake_sudo.read_text().startswith("-n -- sh -c ")  # -n: never prompts


def test_the_runner_passes_sudos_password_prompt_to_the_reporter(tmp_path: Path,
                                                                  fake_sudo: Path) -> None:
    marker = tmp_path / "mark"

    class Asking(RecordingReporter):
        prompts: list[str] = []

        def secret(self, prompt: str) -> str | None:
            self.prompts.append(prompt)
            return "right"

    reporter = Asking(interactive=True)
    tracker = run_plan(LocalMachine(), harmless_plan(marker), SUDO_PROMPT, reporter)
    assert tracker.done and marker.exists()
    assert reporter.prompts == [f"[sudo] password for {ME}: "]
    assert fake_sudo.read_text().startswith("-S -p ")
    assert "right" not in json.dumps(reporter.events)  # the answer is never shown


def test_a_failing_step_of_the_local_runner_names_it(tmp_path: Path) -> None:
    plan = InstallPlan("debian", "Test OS", (
        Step(("sh", "-c", "echo broken >&2; exit 3"), "break", if_failed="A likely cause."),))
    with pytest.raises(DockerInstallFailed) as caught:
        run_plan(LocalMachine(), plan, ROOT, RecordingReporter())
    assert "step 1/1 (break) failed with exit status 3" in caught.value.message
    assert "broken" in caught.value.message
    assert caught.value.hint.startswith("A likely cause. Fix the cause on this machine")


# -- the offer ----------------------------------------------------------------------------------
def test_a_no_runs_nothing(tmp_path: Path, fake_sudo: Path) -> None:
    sock = tmp_path / "docker.sock"
    questions: list[str] = []
    reporter = RecordingReporter(interactive=True)
    with pytest.raises(DockerInstallNotConfirmed) as caught:
        offer_local_docker_install(f"unix://{sock}", reporter, assume_yes=False,
                                   confirm=lambda q: questions.append(q) or False)
    assert questions == ["Install Docker on this machine now?"]
    assert caught.value.message == "Docker was not installed on this machine: you said no"
    assert "occ host install-docker local" in caught.value.hint
    assert any("DOCKER_HOST" in text for text in reporter.of("notice"))
    assert not fake_sudo.exists() or "sh -c" not in fake_sudo.read_text()  # no plan ran


def test_without_a_terminal_nothing_is_asked_or_run(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "detect", lambda conn: pytest.fail("detected"))
    with pytest.raises(DockerInstallNotConfirmed) as caught:
        offer_local_docker_install(f"unix://{tmp_path}/docker.sock", RecordingReporter(),
                                   assume_yes=False)
    assert caught.value.reason == "no-terminal"
    assert "occ host install-docker local --yes" in caught.value.hint


def test_after_the_plan_a_missing_group_is_named_not_waited_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = LocalMachine(str(tmp_path / "docker.sock"))
    monkeypatch.setattr(machine, "lacks_access", lambda socket: True)
    assert installer.wait_for_engine(machine, machine.socket, timeout=600,
                                     hopeless=lambda: machine.lacks_access(machine.socket),
                                     sleep=lambda s: pytest.fail("waited")) is None
    problem = machine.unusable(machine.socket)
    assert "is not in the docker group yet" in problem.message
    assert "newgrp docker" in problem.hint


def test_an_engine_that_is_not_a_local_socket_is_not_installed_here() -> None:
    assert socket_of(None) == "/var/run/docker.sock"
    assert socket_of("unix:///run/user/1000/docker.sock") == "/run/user/1000/docker.sock"
    with pytest.raises(OccError) as caught:
        socket_of("tcp://10.0.0.5:2375")
    assert "not a socket on this machine" in caught.value.message


def test_setup_without_a_terminal_needs_yes(occ) -> None:
    result = occ("setup", input="")
    assert result.returncode == 1
    assert "occ setup asks its questions in a terminal, and there is none here" in result.stderr
    assert "occ setup --yes" in result.stderr
    assert not occ.config_file.exists()  # nothing saved


def test_install_docker_local_without_a_terminal_needs_yes(occ, tmp_path: Path) -> None:
    occ.env["DOCKER_HOST"] = f"unix://{tmp_path}/docker.sock"
    result = occ("host", "install-docker", "local", input="")
    assert result.returncode == 1
    assert result.stderr.startswith("occ uses the Engine at DOCKER_HOST")  # no [local] prefix
    assert "Error: Docker is not installed on this machine, and there is no terminal" \
        in result.stderr
    assert "occ host install-docker local --yes" in result.stderr
