"""Offer to install Docker on a remote host that lacks it, and install it after a yes.

The thin part around the pure plans of :mod:`distros.plans`: it asks the host what it is
(one round trip), shows the person the distribution and the exact commands, asks, runs
them as root in one SSH session with their output streamed under the host's prefix, opens
the SSH connection anew so that the new ``docker`` group applies, and checks that the
Engine answers through occ's own forwarded socket.

The public entry point is :func:`offer_docker_install`; ``occ host add``, ``occ host
test``, ``occ host install-docker`` and the container commands with ``--host`` call it.
For this machine, :mod:`install.local` hands it a connection that runs the same commands
with subprocess instead of SSH; that target is named ``local`` (a name hosts.json
reserves), is called "this machine" in messages and needs no new login afterwards.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencode_cloud.distros.plans import (
    MANUAL_DOCKERD,
    MANUAL_URL,
    MARKER,
    ROOT,
    SUDO,
    SUDO_PROMPT,
    SUDO_PROMPT_TEXT,
    InstallPlan,
    RemoteFacts,
    UnsupportedSystem,
    detect_command,
    parse_detect_output,
    plan_install,
    remote_install_command,
)
from opencode_cloud.errors import OccError
from opencode_cloud.report import Reporter

SUDO_PROMPT_START = SUDO_PROMPT_TEXT.split("%", 1)[0]  # "[sudo] password for "
INSTALL_TIMEOUT = 1800.0  # seconds for the whole installation (downloads included)
ENGINE_TIMEOUT = 60.0  # seconds for the new Engine to answer through the forward
DETECT_TIMEOUT = 60.0
# Names of process 1 that start services at boot (anything else, such as a container's
# tini or a sandbox's agent, leaves init scripts without a manager).
SERVICE_MANAGERS = frozenset({"systemd", "init", "openrc-init", "runit", "runsvdir",
                              "s6-svscan"})
LOCAL = "local"  # the target name of this machine (`--host local`, install-docker local)


def place(name: str) -> str:
    """How messages name the target: the host's name, or "this machine"."""
    return "this machine" if name == LOCAL else name


def check_command(name: str) -> str:
    """What to run to see whether Docker works there now."""
    return "occ status" if name == LOCAL else f"occ host test {name}"


class InstallError(OccError):
    """Docker cannot be installed (or was not) on a host; rendered with its prefix (none
    for this machine)."""

    def __init__(self, message: str, hint: str | None = None, *, host: str) -> None:
        super().__init__(message, hint)
        self.host = None if host == LOCAL else host


class DockerInstallNotConfirmed(InstallError):
    """Nothing was installed: the person said no, or there was no terminal to ask in."""

    def __init__(self, message: str, hint: str, *, host: str, reason: str) -> None:
        super().__init__(message, hint, host=host)
        self.reason = reason  # "declined" | "no-terminal"


class DockerInstallFailed(InstallError):
    """The installation ran and did not end with a usable Engine."""


@dataclass
class InstallReport:
    host: str
    system: str
    steps: int
    seconds: float
    version: str = ""
    api_version: str = ""


# -- pure parts ----------------------------------------------------------------------------
def choose_privilege(facts: RemoteFacts, host: str, *, interactive: bool,
                     by_hand: str = "") -> str:
    """How the plan runs as root: as root itself, ``sudo -n``, or sudo asking a password
    in the person's terminal. Raises OccError when none of these can work; its hint ends
    with ``by_hand`` (the commands to type), else with the manual's address."""
    user = facts.user or "the login user"
    by_hand = by_hand or MANUAL_URL
    if facts.uid == 0:
        return ROOT
    if not facts.has_sudo:
        as_root = ("Run 'occ host install-docker local' as root for this once"
                   if host == LOCAL else
                   f"Log in as root for this once (occ host edit {host} -u root)")
        raise InstallError(
            f"{user} is not root on {place(host)}, and sudo is not installed there",
            hint=f"occ needs root to install Docker. {as_root}, or install sudo there and "
            f"allow {user} to use it, or install Docker by hand: {by_hand}",
            host=host,
        )
    if facts.sudo_nopasswd:
        return SUDO
    if interactive:
        return SUDO_PROMPT
    raise InstallError(
        f"sudo on {place(host)} asks {user} for a password, and there is no terminal to "
        "type it in",
        hint="Run the command in a terminal (occ passes sudo's password prompt through), "
        f"or allow {user} to use sudo without a password, or install Docker by hand: "
        f"{by_hand}",
        host=host,
    )


def plan_for(facts: RemoteFacts, host: str) -> InstallPlan:
    try:
        return plan_install(facts.os_release, facts.user or "root", facts.init,
                            facts.uid == 0, installed=facts.engine_installed)
    except UnsupportedSystem as exc:
        os = exc.os_release
        raise InstallError(
            f"occ cannot install Docker on {place(host)}: it does not know {os.pretty_name} "
            f"(ID={os.id}{', ID_LIKE=' + ' '.join(os.id_like) if os.id_like else ''})",
            hint=f"Install Docker Engine by hand as {MANUAL_URL} describes for your system, "
            f"then run: {check_command(host)}",
            host=host,
        ) from None


def describe_plan(plan: InstallPlan, facts: RemoteFacts, host: str, privilege: str) -> list[str]:
    """The lines shown before asking: what was found, and every command, numbered."""
    who = {ROOT: "as root", SUDO: "as root, through sudo",
           SUDO_PROMPT: "as root, through sudo (it will ask for your password)"}[privilege]
    where = place(host)
    if facts.engine_installed:
        what = f"Docker is installed on {where} but not ready to use. occ can finish the setup"
    else:
        what = f"Docker is not installed on {where}. occ can install it"
    login = "user" if host == LOCAL else "SSH user"
    lines = [
        f"System: {plan.system} (ID={facts.os_release.id}, {plan.family} family, init "
        f"{facts.init}); {login}: {facts.user or '?'}",
        f"{what} with these commands, run {who}:",
    ]
    for n, step in enumerate(plan.steps, 1):
        lines.append(f"  {n}. {step.why}")
        lines.append(f"       {step.display()}")
    if plan.manual_start:
        lines.append(f"{where.capitalize()} has no init system{_pid1(facts)}, so occ cannot "
                     f"start the daemon; afterwards, start it yourself as root: "
                     f"{plan.manual_start}")
    elif facts.init == "sysv" and facts.pid1 and facts.pid1 not in SERVICE_MANAGERS:
        lines.append(f"Process 1 on {where} is {facts.pid1}, not an init system: if "
                     f"'service docker start' fails, start the daemon yourself as root: "
                     f"{MANUAL_DOCKERD}")
    return lines


def _pid1(facts: RemoteFacts) -> str:
    return f" (process 1 is {facts.pid1})" if facts.pid1 else ""


def no_init_system(plan: InstallPlan, facts: RemoteFacts, name: str) -> DockerInstallFailed:
    """Docker's package is there, but nothing on the target starts services."""
    sudo = "" if facts.uid == 0 else "sudo "
    return DockerInstallFailed(
        f"Docker is installed on {place(name)}, but nothing there starts its daemon: there "
        f"is no init system{_pid1(facts)}",
        hint=f"Start the daemon yourself: {sudo}sh -c '{plan.manual_start}' (it answers "
        "within seconds: docker version); then run the occ command again.",
        host=name,
    )


def manual_commands(plan: InstallPlan, privilege: str) -> str:
    """The plan as a person would type it (for hints)."""
    sudo = "" if privilege == ROOT else "sudo "
    return "; ".join(step.typed(sudo) for step in plan.steps)


@dataclass
class StepTracker:
    """Reads the install script's output: its markers say which step runs, was skipped,
    failed or whether all finished; everything else is a step's output."""

    plan: InstallPlan
    current: int = 0
    skipped: list[int] = field(default_factory=list)
    failed: tuple[int, int] | None = None
    done: bool = False
    output: dict[int, list[str]] = field(default_factory=dict)

    def feed(self, line: str) -> tuple[str, int] | None:
        """An event (``step``, ``skipped``, ``failed``, ``done``) with its step number, or
        None for a line of output (kept per step)."""
        if line.startswith(MARKER):
            words = line[len(MARKER):].split()
            with contextlib.suppress(ValueError, IndexError):
                if words == ["done"]:
                    self.done = True
                    return ("done", self.current)
                kind, n = words[0], int(words[1])
                if kind == "step":
                    self.current = n
                    return ("step", n)
                if kind == "skipped":
                    self.skipped.append(n)
                    return ("skipped", n)
                if kind == "failed":
                    self.failed = (n, int(words[2]))
                    return ("failed", n)
        self.output.setdefault(self.current, []).append(line)
        return None

    def last_lines(self, step: int, count: int = 12) -> list[str]:
        return [line for line in self.output.get(step, []) if line.strip()][-count:]


# -- the parts that talk to the host ---------------------------------------------------------
def detect(conn: Any) -> RemoteFacts:
    """What the host is: os-release, init system, login user, Docker and sudo."""
    proc = conn.run(detect_command(), timeout=DETECT_TIMEOUT)
    text = proc.stdout.decode(errors="replace")
    if "--occ--" not in text:
        raise InstallError(
            f"the host did not answer occ's check of its system (exit status "
            f"{proc.returncode}): {proc.stderr.decode(errors='replace').strip()[:300]}",
            hint="The account's login shell must run 'sh -c …' commands; check it.",
            host=conn.host.name,
        )
    return parse_detect_output(text)


def run_plan(conn: Any, plan: InstallPlan, privilege: str, reporter: Reporter,
             timeout: float = INSTALL_TIMEOUT) -> StepTracker:
    """Run the plan in one session, reporting each step and its output as it comes.

    sudo's password prompt (``sudo-prompt``) is answered through ``reporter.secret``; the
    answer goes to sudo on the host through the SSH session, never into an argument.
    """
    name = conn.host.name
    total = len(plan.steps)
    tracker = StepTracker(plan)

    def on_line(line: str) -> None:
        event = tracker.feed(line)
        if event is None:
            reporter.output(line)
            return
        kind, n = event
        if kind == "step":
            step = plan.steps[n - 1]
            reporter.info(f"({n}/{total}) {step.why}: {step.display()}")
        elif kind == "skipped":
            reporter.info(f"({n}/{total}) already done")

    def answer(prompt: str) -> str | None:
        if prompt.startswith(SUDO_PROMPT_START):
            return reporter.secret(prompt)
        return None  # any other unfinished line is just output

    command = remote_install_command(plan, privilege)
    started = time.monotonic()
    try:
        returncode = conn.stream(command, on_line=on_line, timeout=timeout,
                                 answer=answer if privilege == SUDO_PROMPT else None)
    except subprocess.TimeoutExpired:
        raise DockerInstallFailed(
            f"the installation on {place(name)} did not finish within {timeout / 60:.0f} minutes "
            f"(it was in step {tracker.current}/{total})",
            hint=f"Check the host (a slow mirror, a held package lock), then run again: "
            f"occ host install-docker {name}",
            host=name,
        ) from None
    if tracker.done and returncode == 0:
        return tracker
    again = f"Fix the cause on {place(name)}, then run 'occ host install-docker {name}' " \
            "again: it finishes what is left."
    if tracker.failed is not None:
        n, status = tracker.failed
        step = plan.steps[n - 1]
        raise DockerInstallFailed(
            f"step {n}/{total} ({step.why}) failed with exit status {status}: "
            f"{step.display()}" + _last(tracker.last_lines(n)),
            hint=f"{step.if_failed} {again}" if step.if_failed else again, host=name)
    if tracker.current == 0:
        how = "sudo" if privilege != ROOT else "the shell"
        raise DockerInstallFailed(
            f"{how} on {place(name)} did not run the installation (exit status {returncode})"
            + _last(tracker.last_lines(0)),
            hint=f"Check that {conn.host.config.user or 'the login user'} may use sudo "
            f"there (sudo -v), then try again: occ host install-docker {name}"
            if privilege != ROOT else again, host=name)
    raise DockerInstallFailed(
        f"the installation on {place(name)} stopped in step {tracker.current}/{total} after "
        f"{time.monotonic() - started:.0f} s (exit status {returncode})"
        + _last(tracker.last_lines(tracker.current)), hint=again, host=name)


def _last(lines: list[str]) -> str:
    return ("; its last output:\n" + "\n".join(f"  {line}" for line in lines)) if lines else ""


def engine_info(conn: Any, socket: str) -> dict[str, Any] | None:
    """The Engine's /info through occ's forwarded socket, or None if it does not answer."""
    from opencode_cloud.engine.probe import query_engine

    return query_engine(conn.docker_forward(socket), timeout=10)


def wait_for_engine(conn: Any, socket: str, timeout: float | None = None,
                    sleep: Callable[[float], None] = time.sleep,
                    hopeless: Callable[[], bool] = lambda: False) -> dict[str, Any] | None:
    """Ask until the Engine answers (a daemon just started needs a moment), or give up
    (at the deadline, or at once when ``hopeless()`` says waiting cannot help)."""
    deadline = time.monotonic() + (ENGINE_TIMEOUT if timeout is None else timeout)
    while True:
        info = engine_info(conn, socket)
        if info is not None or time.monotonic() >= deadline or hopeless():
            return info
        sleep(1.0)


def clear_docker_missing(name: str, hosts_file: Path | None = None) -> None:
    """hosts.json no longer marks the host as needing Docker (written only if it did)."""
    from opencode_cloud.hosts import store

    current = store.load_hosts(hosts_file).hosts.get(name)
    if current is None or not current.docker_missing:
        return

    def change(hosts: Any) -> Any:
        config = hosts.hosts.get(name)
        if config is None or not config.docker_missing:
            return hosts
        return hosts.with_host(name, config.changed(docker_missing=False))

    store.change_hosts(change, hosts_file)


def not_confirmed_without_terminal(name: str) -> DockerInstallNotConfirmed:
    return DockerInstallNotConfirmed(
        f"Docker is not installed on {place(name)}, and there is no terminal to ask whether "
        "occ may install it",
        hint=f"Let occ install it (it prints each command as it runs it): occ host "
        f"install-docker {name} --yes. Or install Docker Engine yourself: {MANUAL_URL}",
        host=name, reason="no-terminal",
    )


def offer_docker_install(conn: Any, host: Any, reporter: Reporter, *, assume_yes: bool,
                         interactive: bool | None = None,
                         confirm: Callable[[str], bool] | None = None,
                         hosts_file: Path | None = None,
                         timeout: float = INSTALL_TIMEOUT) -> InstallReport | None:
    """Install Docker on ``host`` over ``conn`` after the person agrees (or ``assume_yes``).

    Questions go through ``reporter`` (``interactive``, ``confirm``, ``secret`` for sudo's
    password); ``interactive`` and ``confirm`` given here override it.

    Returns once Docker is usable through occ's forwarded socket (None if it already was).
    Raises :class:`DockerInstallNotConfirmed` when the person says no or cannot be asked
    (no terminal and no ``assume_yes``): nothing was installed then. Raises OccError (with
    a hint) when the host cannot be handled, and :class:`DockerInstallFailed` when the
    installation or the check after it fails.
    """
    name = host.name
    socket = host.config.effective_docker_socket
    interactive = reporter.interactive if interactive is None else interactive
    confirm = confirm or reporter.confirm
    if engine_info(conn, socket) is not None:
        return None
    if not assume_yes and not interactive:
        raise not_confirmed_without_terminal(name)

    facts = detect(conn)
    plan = plan_for(facts, name)
    privilege = choose_privilege(facts, name, interactive=interactive,
                                 by_hand=manual_commands(plan, SUDO))
    if not plan.steps and plan.manual_start:
        raise no_init_system(plan, facts, name)  # nothing to install, nothing to ask
    for line in describe_plan(plan, facts, name, privilege):
        reporter.info(line)
    where = place(name)
    if not assume_yes and not confirm(f"Install Docker on {where} now?"):
        raise DockerInstallNotConfirmed(
            f"Docker was not installed on {where}: you said no",
            hint=f"Install it later with 'occ host install-docker {name}', or by hand: "
            f"{manual_commands(plan, privilege)}",
            host=name, reason="declined",
        )

    started = time.monotonic()
    run_plan(conn, plan, privilege, reporter, timeout=timeout)
    if plan.manual_start:
        raise no_init_system(plan, facts, name)
    local = name == LOCAL
    if local:  # this process keeps its groups whatever happened: nothing to log in anew
        info = wait_for_engine(conn, socket, hopeless=lambda: conn.lacks_access(socket))
    else:  # the login that ran the install is not in the docker group yet: log in anew
        conn.disconnect()
        conn.ensure_master()
        info = wait_for_engine(conn, socket)
    if info is None:
        if local:
            raise conn.unusable(socket)
        from opencode_cloud.engine.probe import probe_host

        problem = probe_host(conn).problem
        raise DockerInstallFailed(
            f"Docker was installed on {name}, but occ cannot use it yet"
            + (f": {problem.message}" if problem else ""),
            hint=problem.hint if problem else f"Run 'occ host test {name}' to see why.",
            host=name,
        )
    if not local:
        clear_docker_missing(name, hosts_file)
    report = InstallReport(name, plan.system, len(plan.steps), time.monotonic() - started,
                           str(info.get("ServerVersion", "")), str(info.get("ApiVersion", "")))
    how = "" if local else ", and occ reaches it over SSH"
    reporter.success(f"Docker {report.version} (API {report.api_version}) runs on {where}"
                     f"{how} (set up in {report.seconds:.0f} s).")
    return report
