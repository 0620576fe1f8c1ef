"""offer_docker_install's decisions with a fake connection: when it asks, what it shows,
how it becomes root, what it reports on failure, and that it logs in anew and checks the
Engine before it says yes. (The real thing runs in tests/lab/test_install_docker.py.)"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opencode_cloud.distros.plans import MARKER, ROOT, SUDO, SUDO_PROMPT, parse_detect_output
from opencode_cloud.errors import OccError
from opencode_cloud.hosts.model import Host, HostConfig
from opencode_cloud.install import installer
from opencode_cloud.install.installer import (
    DockerInstallFailed,
    DockerInstallNotConfirmed,
    StepTracker,
    choose_privilege,
    offer_docker_install,
)
from opencode_cloud.report import Reporter

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).parent / "os_release_samples"


def facts_text(sample: str = "debian-12", uid: int = 1000, user: str = "deploy",
               dockerd: bool = False, sudo: bool = True, nopasswd: bool = True,
               init: str = "sysv") -> str:
    lines = [f"init={init}", f"uid={uid}", f"user={user}",
             f"docker={'installed' if dockerd else 'missing'}",
             f"dockerd={'installed' if dockerd else 'missing'}",
             f"sudo={'yes' if sudo else 'no'}"]
    if sudo:
        lines.append(f"sudo_nopasswd={'yes' if nopasswd else 'no'}")
    return (SAMPLES / sample).read_text() + "--occ--\n" + "\n".join(lines) + "\n"


class FakePrinter(Reporter):
    """A reporter that records every line it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    step = success = detail = output = notice = warn = info

    def confirm(self, question: str) -> bool:
        raise AssertionError("the test passes its own confirm")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class FakeConnection:
    host: Host
    detect_output: str
    script_output: list[str] = field(default_factory=list)
    script_status: int = 0
    engine_after: int = 1  # the Engine answers from this engine_info call on (0: at once)
    calls: list[str] = field(default_factory=list)
    engine_calls: int = 0
    streamed: list[tuple[str, Any]] = field(default_factory=list)

    def run(self, remote: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        self.calls.append("run")
        return subprocess.CompletedProcess([], 0, self.detect_output.encode(), b"")

    def stream(self, remote: str, *, on_line, answer, timeout) -> int:
        self.calls.append("stream")
        self.streamed.append((remote, answer))
        for line in self.script_output:
            on_line(line)
        return self.script_status

    def disconnect(self) -> bool:
        self.calls.append("disconnect")
        return True

    def ensure_master(self) -> bool:
        self.calls.append("ensure_master")
        return True

    def engine(self) -> dict | None:
        self.engine_calls += 1
        if self.engine_calls > self.engine_after:
            return {"ServerVersion": "20.10.24", "ApiVersion": "1.41"}
        return None


def ok_output(steps: int) -> list[str]:
    out = []
    for n in range(1, steps + 1):
        out += [f"{MARKER} step {n}", f"output of step {n}"]
    return [*out, f"{MARKER} done"]


@pytest.fixture
def host() -> Host:
    return Host("web", HostConfig("web.example", user="deploy"))


@pytest.fixture(autouse=True)
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "engine_info", lambda conn, socket: conn.engine())
    monkeypatch.setattr(installer, "ENGINE_TIMEOUT", 0.0)


def offer(conn: FakeConnection, host: Host, printer: FakePrinter, tmp_path: Path,
          **kwargs: Any):
    kwargs.setdefault("assume_yes", True)
    kwargs.setdefault("interactive", False)
    return offer_docker_install(conn, host, printer, hosts_file=tmp_path / "hosts.json",
                                **kwargs)


def test_nothing_to_do_when_the_engine_answers(host: Host, tmp_path: Path) -> None:
    conn = FakeConnection(host, facts_text(), engine_after=0)
    assert offer(conn, host, FakePrinter(), tmp_path) is None
    assert conn.calls == []


def test_without_a_terminal_and_yes_it_asks_nothing_and_runs_nothing(host: Host,
                                                                     tmp_path: Path) -> None:
    conn = FakeConnection(host, facts_text())
    with pytest.raises(DockerInstallNotConfirmed) as info:
        offer(conn, host, FakePrinter(), tmp_path, assume_yes=False, interactive=False)
    assert info.value.reason == "no-terminal"
    assert "occ host install-docker web --yes" in (info.value.hint or "")
    assert conn.calls == []  # not even the detection


def test_declining_shows_the_plan_first_and_runs_nothing(host: Host, tmp_path: Path) -> None:
    conn = FakeConnection(host, facts_text())
    printer = FakePrinter()
    questions: list[str] = []

    def say_no(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(DockerInstallNotConfirmed) as info:
        offer(conn, host, printer, tmp_path, assume_yes=False, interactive=True,
              confirm=say_no)
    assert questions == ["Install Docker on web now?"]
    assert info.value.reason == "declined"
    assert "System: Debian GNU/Linux 12 (bookworm) (ID=debian, debian family, init sysv)" \
        in printer.text
    assert "       DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " \
        "docker.io" in printer.lines
    assert "sudo apt-get update" in (info.value.hint or "")  # the commands, to type by hand
    assert conn.calls == ["run"]  # detection only


def test_yes_runs_the_plan_logs_in_anew_and_checks_the_engine(
        host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "ENGINE_TIMEOUT", 5.0)  # it answers at the 2nd try (1 s)
    (tmp_path / "hosts.json").write_text(json.dumps(
        {"version": 1, "hosts": {"web": {"hostname": "web.example", "docker_missing": True}}}))
    conn = FakeConnection(host, facts_text(), script_output=ok_output(5), engine_after=2)
    printer = FakePrinter()
    report = offer(conn, host, printer, tmp_path)
    assert report is not None and report.version == "20.10.24" and report.steps == 5
    assert conn.calls == ["run", "stream", "disconnect", "ensure_master"]
    remote, answer = conn.streamed[0]
    assert remote.startswith("sudo -n -- sh -c ") and answer is None  # nothing to answer
    assert "(2/5) refresh the package lists: apt-get update" in printer.lines
    assert "output of step 3" in printer.lines  # streamed through the printer
    assert f"{MARKER} step 1" not in printer.lines  # markers are not shown
    hosts = json.loads((tmp_path / "hosts.json").read_text())
    assert "docker_missing" not in hosts["hosts"]["web"]


def test_a_failed_step_names_the_command_and_its_last_output(host: Host,
                                                             tmp_path: Path) -> None:
    output = [f"{MARKER} step 1", f"{MARKER} step 2", "Err:1 http://deb.debian.org bookworm",
              "E: Unable to fetch some archives", f"{MARKER} failed 2 100"]
    conn = FakeConnection(host, facts_text(), script_output=output, script_status=100)
    with pytest.raises(DockerInstallFailed) as info:
        offer(conn, host, FakePrinter(), tmp_path)
    message = info.value.message
    assert "step 2/5 (refresh the package lists) failed with exit status 100: apt-get update" \
        in message
    assert "E: Unable to fetch some archives" in message
    assert "occ host install-docker web' again" in (info.value.hint or "")
    assert "disconnect" not in conn.calls


def test_sudo_refusing_is_reported_as_such(host: Host, tmp_path: Path) -> None:
    conn = FakeConnection(host, facts_text(), script_output=[
        "sudo: 3 incorrect password attempts"], script_status=1)
    with pytest.raises(DockerInstallFailed) as info:
        offer(conn, host, FakePrinter(), tmp_path)
    assert "sudo on web did not run the installation (exit status 1)" in info.value.message
    assert "3 incorrect password attempts" in info.value.message


def test_an_engine_that_never_answers_is_a_failure_with_the_reason(
        host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opencode_cloud.engine import probe

    @dataclass
    class Report:
        problem: OccError | None

    monkeypatch.setattr(probe, "probe_host", lambda conn: Report(OccError(
        "deploy may not use the Docker socket", "sudo usermod -aG docker deploy")))
    conn = FakeConnection(host, facts_text(), script_output=ok_output(5), engine_after=99)
    with pytest.raises(DockerInstallFailed) as info:
        offer(conn, host, FakePrinter(), tmp_path)
    assert "installed on web, but occ cannot use it yet: deploy may not use" \
        in info.value.message


def test_a_half_done_install_plans_only_what_is_left(host: Host, tmp_path: Path) -> None:
    conn = FakeConnection(host, facts_text(dockerd=True), script_output=ok_output(3))
    printer = FakePrinter()
    offer(conn, host, printer, tmp_path)
    assert "Docker is installed on web but not ready to use" in printer.text
    assert "apt-get install" not in printer.text
    assert "(2/3) start Docker now: service docker start" in printer.lines


def test_a_password_sudo_asks_the_reporter_for_sudos_prompt_only(host: Host,
                                                                 tmp_path: Path) -> None:
    class Asking(FakePrinter):
        asked: list[str] = []

        def secret(self, prompt: str) -> str:
            self.asked.append(prompt)
            return "pw"

    conn = FakeConnection(host, facts_text(nopasswd=False), script_output=ok_output(5))
    printer = Asking()
    offer(conn, host, printer, tmp_path, assume_yes=True, interactive=True)
    remote, answer = conn.streamed[0]
    assert remote.startswith("sudo -S -p ")
    assert answer("[sudo] password for deploy: ") == "pw"
    assert answer("Continue? ") is None  # other unfinished lines are only output
    assert printer.asked == ["[sudo] password for deploy: "]
    assert "as root, through sudo (it will ask for your password)" in printer.text


def test_commands_to_type_by_hand() -> None:
    from opencode_cloud.distros.os_release import parse_os_release
    from opencode_cloud.distros.plans import plan_install
    from opencode_cloud.install.installer import manual_commands

    alpine = plan_install(parse_os_release((SAMPLES / "alpine-3.20").read_text()), "o'b",
                          "openrc", False)
    assert manual_commands(alpine, SUDO) == (
        "sudo apk add docker; sudo rc-update add docker default; "
        "sudo rc-service docker status || sudo rc-service docker restart; "
        "sudo addgroup 'o'\"'\"'b' docker")
    assert manual_commands(alpine, ROOT).startswith("apk add docker; rc-update")


def test_unsupported_systems_get_the_manual(host: Host, tmp_path: Path) -> None:
    conn = FakeConnection(host, facts_text("nixos"))
    with pytest.raises(OccError) as info:
        offer(conn, host, FakePrinter(), tmp_path)
    assert "does not know NixOS 24.05" in info.value.message
    assert "https://docs.docker.com/engine/install/" in (info.value.hint or "")
    assert "stream" not in conn.calls


@pytest.mark.parametrize(
    ("uid", "sudo", "nopasswd", "interactive", "expected"),
    [(0, False, False, False, ROOT), (1000, True, True, False, SUDO),
     (1000, True, False, True, SUDO_PROMPT), (1000, True, False, False, "password"),
     (1000, False, False, True, "sudo is not installed")],
)
def test_how_it_becomes_root(uid: int, sudo: bool, nopasswd: bool, interactive: bool,
                             expected: str) -> None:
    facts = parse_detect_output(facts_text(uid=uid, sudo=sudo, nopasswd=nopasswd))
    if expected in (ROOT, SUDO, SUDO_PROMPT):
        assert choose_privilege(facts, "web", interactive=interactive) == expected
        return
    with pytest.raises(OccError) as info:
        choose_privilege(facts, "web", interactive=interactive, by_hand="sudo apt-get …")
    assert expected in info.value.message
    assert (info.value.hint or "").endswith("sudo apt-get …")


def test_the_tracker_reads_markers_and_keeps_output_per_step() -> None:
    from opencode_cloud.distros.os_release import parse_os_release
    from opencode_cloud.distros.plans import plan_install

    plan = plan_install(parse_os_release((SAMPLES / "alpine-3.20").read_text()), "u",
                        "openrc", False)
    tracker = StepTracker(plan)
    events = [tracker.feed(line) for line in (
        "before", f"{MARKER} step 1", "a", f"{MARKER} step 3", f"{MARKER} skipped 3",
        f"{MARKER} nonsense", f"{MARKER} step 4", "b", f"{MARKER} failed 4 2")]
    assert events == [None, ("step", 1), None, ("step", 3), ("skipped", 3), None,
                      ("step", 4), None, ("failed", 4)]
    assert tracker.failed == (4, 2) and tracker.skipped == [3] and not tracker.done
    assert tracker.last_lines(0) == ["before"]
    assert tracker.last_lines(4) == ["b"]
    assert tracker.last_lines(3) == [f"{MARKER} nonsense"]
