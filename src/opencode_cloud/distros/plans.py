"""Pure builders of the commands that install and start Docker on each distribution family.

Every plan uses the distribution's own signed packages, or Docker's signed package
repository where the distribution ships none; never a script piped from the internet.
Each step is safe to run again, so a half-finished install is finished by re-running it;
when the Engine's package is already there, the package steps are left out.

The steps run on the host as one POSIX shell script (:func:`install_script`) under one
``sudo`` (:func:`remote_install_command`), so sudo asks for a password at most once; the
script announces each step on a line of its own, so occ can show which one runs or failed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from opencode_cloud.distros.os_release import OsRelease

MANUAL_URL = "https://docs.docker.com/engine/install/"
DOCKER_CE_RHEL_REPO = "https://download.docker.com/linux/rhel/docker-ce.repo"
DOCKER_CE_CENTOS_REPO = "https://download.docker.com/linux/centos/docker-ce.repo"


class UnsupportedSystem(Exception):
    def __init__(self, os_release: OsRelease) -> None:
        super().__init__(f"occ cannot install Docker on {os_release.pretty_name}")
        self.os_release = os_release


@dataclass(frozen=True)
class Step:
    """One command, run as root (through sudo for other users). ``unless``: a check; when
    it succeeds the step is skipped (for commands that are not idempotent by themselves)."""

    argv: tuple[str, ...]
    why: str
    env: tuple[tuple[str, str], ...] = ()
    unless: tuple[str, ...] = ()
    if_failed: str = ""  # what to tell the person when this step fails (a likely cause)

    def display(self) -> str:
        """The command exactly as occ runs it as root (environment included)."""
        command = self.shell()
        return f"{shlex.join(self.unless)} || {command}" if self.unless else command

    def typed(self, prefix: str = "") -> str:
        """The command as a person would type it (no environment), each part after
        ``prefix`` (such as ``sudo ``)."""
        command = prefix + shlex.join(self.argv)
        return f"{prefix}{shlex.join(self.unless)} || {command}" if self.unless else command

    def shell(self) -> str:
        """The step as one shell command line for root, every value quoted (the whole
        script runs under one sudo: :func:`remote_install_command`)."""
        env = [f"{key}={shlex.quote(value)}" for key, value in self.env]
        return " ".join([*env, *(shlex.quote(word) for word in self.argv)])


@dataclass(frozen=True)
class InstallPlan:
    family: str
    system: str
    steps: tuple[Step, ...]
    # No init system to start the daemon (a container, a bare VM): the command a person
    # runs as root to start it instead; the plan itself then starts nothing.
    manual_start: str = ""


def _step(why: str, *argv: str, unless: tuple[str, ...] = (), if_failed: str = "",
          **env: str) -> Step:
    return Step(tuple(argv), why, tuple(sorted(env.items())), unless, if_failed)


# How to run the daemon where nothing starts services: in the background, its log kept.
MANUAL_DOCKERD = "dockerd >/var/log/dockerd.log 2>&1 &"


def _service_steps(init: str) -> list[Step]:
    if init == "systemd":
        return [
            _step("start Docker now and at every boot", "systemctl", "enable", "--now", "docker")
        ]
    if init == "openrc":
        # `start` does nothing for a service OpenRC believes started but whose daemon died
        # (it reports it "crashed"): restart it unless its status says it runs.
        return [
            _step("start Docker at every boot", "rc-update", "add", "docker", "default"),
            _step("start Docker now", "rc-service", "docker", "restart",
                  unless=("rc-service", "docker", "status")),
        ]
    if init == "none":  # nothing here starts services: the person starts dockerd
        return []
    # sysvinit, and containers whose `service` runs init scripts (Debian's docker.io ships
    # one); where PID 1 is no init the script may still fail (limits it may not raise).
    return [_step("start Docker now", "service", "docker", "start",
                  if_failed="If this machine has no init system, start the daemon yourself "
                  f"as root instead: sh -c '{MANUAL_DOCKERD}'")]


def _debian(os: OsRelease) -> list[Step]:
    return [
        _step("refresh the package lists", "apt-get", "update"),
        _step(
            "install Docker from the distribution's signed packages",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "docker.io",
            DEBIAN_FRONTEND="noninteractive",
        ),
    ]


def _fedora(os: OsRelease) -> list[Step]:
    return [
        _step(
            "install Docker (Moby) from Fedora's signed packages",
            "dnf",
            "install",
            "-y",
            "moby-engine",
        )
    ]


def _major(version_id: str) -> int:
    head = version_id.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _rhel(os: OsRelease) -> list[Step]:
    repo = DOCKER_CE_RHEL_REPO if os.id == "rhel" else DOCKER_CE_CENTOS_REPO
    if 0 < _major(os.version_id) < 8:  # CentOS/RHEL 7: yum, and yum-utils' config manager
        return [
            _step("add the repository tool", "yum", "install", "-y", "yum-utils"),
            _step("add Docker's signed package repository", "yum-config-manager",
                  "--add-repo", repo),
            _step("install Docker from that repository (its GPG key is checked)", "yum",
                  "install", "-y", "docker-ce", "docker-ce-cli", "containerd.io"),
        ]
    return [
        _step("add the repository plugin", "dnf", "install", "-y", "dnf-plugins-core"),
        _step(
            "add Docker's signed package repository", "dnf", "config-manager", "--add-repo", repo
        ),
        _step(
            "install Docker from that repository (its GPG key is checked)",
            "dnf",
            "install",
            "-y",
            "docker-ce",
            "docker-ce-cli",
            "containerd.io",
        ),
    ]


def _amazon(os: OsRelease) -> list[Step]:
    tool = "yum" if os.version_id == "2" else "dnf"
    return [
        _step("install Docker from Amazon Linux's signed packages", tool, "install", "-y", "docker")
    ]


def _alpine(os: OsRelease) -> list[Step]:
    return [_step("install Docker from Alpine's signed packages", "apk", "add", "docker")]


def _arch(os: OsRelease) -> list[Step]:
    return [
        _step(
            "install Docker from Arch's signed packages",
            "pacman",
            "-S",
            "--needed",
            "--noconfirm",
            "docker",
        )
    ]


def _suse(os: OsRelease) -> list[Step]:
    return [
        _step(
            "install Docker from SUSE's signed packages",
            "zypper",
            "--non-interactive",
            "install",
            "docker",
        )
    ]


# family -> (ids that belong to it, package steps). Matched on ID first, then on ID_LIKE.
FAMILIES = {
    "debian": ({"debian", "ubuntu", "raspbian", "linuxmint", "pop"}, _debian),
    "fedora": ({"fedora"}, _fedora),
    "rhel": ({"rhel", "centos", "rocky", "almalinux", "ol"}, _rhel),
    "amazon": ({"amzn"}, _amazon),
    "alpine": ({"alpine"}, _alpine),
    "arch": ({"arch", "manjaro", "endeavouros"}, _arch),
    "suse": ({"opensuse-leap", "opensuse-tumbleweed", "opensuse", "sles", "suse"}, _suse),
}


def family_of(os: OsRelease) -> str:
    for candidate in os.ids:
        for family, (ids, _) in FAMILIES.items():
            if candidate in ids:
                return family
    raise UnsupportedSystem(os)


def typed_package_commands(os: OsRelease) -> str | None:
    """How a person installs Docker's packages there by hand (``sudo …; sudo …``), from the
    same plans occ runs; None for a system occ does not know."""
    try:
        family = family_of(os)
    except UnsupportedSystem:
        return None
    return "; ".join(step.typed("sudo ") for step in FAMILIES[family][1](os))


def plan_install(os: OsRelease, user: str, init: str, user_is_root: bool, *,
                 installed: bool = False) -> InstallPlan:
    """The whole plan: packages, the daemon started now and at boot, the user in the group.

    ``installed``: the Engine's package is already there (a half-finished install), so
    only the rest is planned: starting the daemon and the group.
    """
    family = family_of(os)
    steps = [] if installed else FAMILIES[family][1](os)
    if family == "debian":  # an interrupted dpkg blocks apt until this has run
        steps.insert(0, _step("finish any interrupted package installation", "dpkg",
                              "--configure", "-a"))
    alpine_rc = family == "alpine" and init not in ("systemd", "none")
    steps += _service_steps("openrc" if alpine_rc else init)
    if not user_is_root:
        steps.append(
            _step(
                f"let {user} use Docker without sudo (the docker group)",
                "usermod",
                "-aG",
                "docker",
                user,
            )
            if family != "alpine"
            else _step(
                f"let {user} use Docker without sudo (the docker group)", "addgroup", user, "docker"
            )
        )
    return InstallPlan(family, os.pretty_name, tuple(steps),
                       manual_start=MANUAL_DOCKERD if init == "none" else "")


# A POSIX sh test: is Docker's daemon installed? (Not always on PATH for a plain login.)
DOCKERD_INSTALLED = ("command -v dockerd >/dev/null 2>&1 || [ -x /usr/bin/dockerd ] || "
                     "[ -x /usr/sbin/dockerd ]")

# Run on the remote (POSIX sh), facts back: os-release, init system, who, docker presence,
# and whether sudo works without a password (``sudo -n true`` never prompts).
DETECT_SCRIPT = (
    "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; "
    "echo '--occ--'; "
    "if [ -d /run/systemd/system ]; then echo init=systemd; "
    "elif command -v rc-service >/dev/null 2>&1; then echo init=openrc; "
    # `service` lives in sbin, often not on a plain login's PATH
    "elif command -v service >/dev/null 2>&1 || [ -x /usr/sbin/service ] || "
    "[ -x /sbin/service ]; then echo init=sysv; "
    "else echo init=none; fi; "
    "echo pid1=$(cat /proc/1/comm 2>/dev/null | tr -cd 'A-Za-z0-9_.-'); "
    "echo uid=$(id -u); "
    "echo user=$(id -un); "
    f"if {DOCKERD_INSTALLED}; then echo dockerd=installed; else echo dockerd=missing; fi; "
    "if command -v sudo >/dev/null 2>&1; then echo sudo=yes; "
    "if sudo -n true >/dev/null 2>&1; then echo sudo_nopasswd=yes; "
    "else echo sudo_nopasswd=no; fi; else echo sudo=no; fi"
)


def detect_command() -> str:
    """DETECT_SCRIPT for the remote login shell, whatever it is (run by sh)."""
    return shlex.join(["sh", "-c", DETECT_SCRIPT])


@dataclass(frozen=True)
class RemoteFacts:
    os_release: OsRelease
    init: str
    uid: int
    has_sudo: bool
    user: str = ""
    engine_installed: bool = False  # dockerd is there (the package is installed)
    sudo_nopasswd: bool = False
    pid1: str = ""  # the name of process 1 (systemd, init, … or no init at all)


def parse_detect_output(text: str) -> RemoteFacts:
    from opencode_cloud.distros.os_release import parse_os_release

    release_text, _, facts_text = text.partition("--occ--")
    facts = dict(line.split("=", 1) for line in facts_text.split() if "=" in line)
    return RemoteFacts(
        os_release=parse_os_release(release_text),
        init=facts.get("init", "sysv"),
        uid=int(facts.get("uid", "-1") or -1),
        has_sudo=facts.get("sudo") == "yes",
        user=facts.get("user", ""),
        engine_installed=facts.get("dockerd") == "installed",
        sudo_nopasswd=facts.get("sudo_nopasswd") == "yes",
        pid1=facts.get("pid1", ""),
    )


# -- running a plan: one script, one sudo ---------------------------------------------------
MARKER = "occ-install:"


def install_script(plan: InstallPlan) -> str:
    """The plan as one POSIX shell script for root: each step announced (``occ-install:
    step N``), its output and errors together, nothing read from the terminal; the first
    failure ends it (``occ-install: failed N STATUS``), success ends with ``occ-install:
    done``. Every value in it was quoted by :meth:`Step.shell`."""
    # sudo on some systems (SUSE) keeps the login's PATH, without the sbin folders
    lines = ["exec 2>&1", 'PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/sbin:/sbin"', "export PATH"]
    for n, step in enumerate(plan.steps, 1):
        lines.append(f"echo '{MARKER} step {n}'")
        run = f"{step.shell()} </dev/null"
        if step.unless:
            check = f"{shlex.join(step.unless)} </dev/null >/dev/null 2>&1"
            lines.append(f"if {check}; then echo '{MARKER} skipped {n}'; else {run}; fi "
                         f"|| {{ rc=$?; echo \"{MARKER} failed {n} $rc\"; exit \"$rc\"; }}")
        else:
            lines.append(f"{run} || {{ rc=$?; echo \"{MARKER} failed {n} $rc\"; exit \"$rc\"; }}")
    lines.append(f"echo '{MARKER} done'")
    return "\n".join(lines) + "\n"


ROOT, SUDO, SUDO_PROMPT = "root", "sudo", "sudo-prompt"


SUDO_PROMPT_TEXT = "[sudo] password for %u: "  # sudo's own, %u = the user


def remote_install_command(plan: InstallPlan, privilege: str,
                           prompt: str = SUDO_PROMPT_TEXT) -> str:
    """The one command line for the remote login shell that runs the plan as root.

    ``root``: the login is root; ``sudo``: ``sudo -n`` (never asks); ``sudo-prompt``:
    ``sudo -S`` reads a password from the session's input (the person's terminal), after
    showing ``prompt`` on its error output (sudo expands ``%u`` in it).
    """
    script = ["sh", "-c", install_script(plan), "occ-install"]
    if privilege == ROOT:
        return shlex.join(script)
    if privilege == SUDO:
        return shlex.join(["sudo", "-n", "--", *script])
    if privilege == SUDO_PROMPT:
        return shlex.join(["sudo", "-S", "-p", prompt, "--", *script])
    raise ValueError(f"unknown privilege {privilege!r}")
