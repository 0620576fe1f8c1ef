"""Pure builders of the commands that install and start Docker on each distribution family.

Every plan uses the distribution's own signed packages, or Docker's signed package
repository where the distribution ships none; never a script piped from the internet.
Each step is safe to run again, so a half-finished install is finished by re-running it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from opencode_cloud.install.os_release import OsRelease

MANUAL_URL = "https://docs.docker.com/engine/install/"
DOCKER_CE_RHEL_REPO = "https://download.docker.com/linux/rhel/docker-ce.repo"
DOCKER_CE_CENTOS_REPO = "https://download.docker.com/linux/centos/docker-ce.repo"


class UnsupportedSystem(Exception):
    def __init__(self, os_release: OsRelease) -> None:
        super().__init__(f"occ cannot install Docker on {os_release.pretty_name}")
        self.os_release = os_release


@dataclass(frozen=True)
class Step:
    """One command, run as root (through sudo for other users)."""

    argv: tuple[str, ...]
    why: str
    env: tuple[tuple[str, str], ...] = ()

    def shell(self, use_sudo: bool, sudo_prompt: bool) -> str:
        """The step as one remote shell command line, every value quoted."""
        env = [f"{key}={shlex.quote(value)}" for key, value in self.env]
        words = [shlex.quote(word) for word in self.argv]
        if use_sudo:
            # sudo resets the environment, so variables go through env(1) after it.
            sudo = ["sudo"] if sudo_prompt else ["sudo", "-n"]
            return " ".join([*sudo, "--", *(["env", *env] if env else []), *words])
        return " ".join([*env, *words])


@dataclass(frozen=True)
class InstallPlan:
    family: str
    system: str
    steps: tuple[Step, ...]

    def commands(self, use_sudo: bool, sudo_prompt: bool = False) -> list[str]:
        return [step.shell(use_sudo, sudo_prompt) for step in self.steps]


def _step(why: str, *argv: str, **env: str) -> Step:
    return Step(tuple(argv), why, tuple(sorted(env.items())))


def _service_steps(init: str) -> list[Step]:
    if init == "systemd":
        return [
            _step("start Docker now and at every boot", "systemctl", "enable", "--now", "docker")
        ]
    if init == "openrc":
        return [
            _step("start Docker at every boot", "rc-update", "add", "docker", "default"),
            _step("start Docker now", "rc-service", "docker", "start"),
        ]
    # sysvinit and containers without an init system: Debian's docker.io ships an init script.
    return [_step("start Docker now", "service", "docker", "start")]


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


def _rhel(os: OsRelease) -> list[Step]:
    repo = DOCKER_CE_RHEL_REPO if os.id == "rhel" else DOCKER_CE_CENTOS_REPO
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


def plan_install(os: OsRelease, user: str, init: str, user_is_root: bool) -> InstallPlan:
    """The whole plan: packages, the daemon started now and at boot, the user in the group."""
    family = family_of(os)
    steps = FAMILIES[family][1](os)
    steps += _service_steps("openrc" if family == "alpine" and init != "systemd" else init)
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
    return InstallPlan(family, os.pretty_name, tuple(steps))


# Run on the remote, one line of facts back: os-release, init system, uid, docker presence.
DETECT_SCRIPT = (
    "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; "
    "echo '--occ--'; "
    "if [ -d /run/systemd/system ]; then echo init=systemd; "
    "elif command -v rc-service >/dev/null 2>&1; then echo init=openrc; "
    "else echo init=sysv; fi; "
    "echo uid=$(id -u); "
    "command -v docker >/dev/null 2>&1 && echo docker=installed || echo docker=missing; "
    "command -v sudo >/dev/null 2>&1 && echo sudo=yes || echo sudo=no"
)


@dataclass(frozen=True)
class RemoteFacts:
    os_release: OsRelease
    init: str
    uid: int
    docker_installed: bool
    has_sudo: bool


def parse_detect_output(text: str) -> RemoteFacts:
    from opencode_cloud.install.os_release import parse_os_release

    release_text, _, facts_text = text.partition("--occ--")
    facts = dict(line.split("=", 1) for line in facts_text.split() if "=" in line)
    return RemoteFacts(
        os_release=parse_os_release(release_text),
        init=facts.get("init", "sysv"),
        uid=int(facts.get("uid", "-1") or -1),
        docker_installed=facts.get("docker") == "installed",
        has_sudo=facts.get("sudo") == "yes",
    )
