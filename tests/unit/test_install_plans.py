"""Docker install plans per distribution family, from real /etc/os-release samples."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from opencode_cloud.distros.os_release import parse_os_release
from opencode_cloud.distros.plans import (
    UnsupportedSystem,
    family_of,
    parse_detect_output,
    plan_install,
)

SAMPLES = Path(__file__).parent / "os_release_samples"


def sample(name: str):
    return parse_os_release((SAMPLES / name).read_text())


def commands(plan) -> list[str]:
    """Each step as the shell command root runs."""
    return [step.shell() for step in plan.steps]


@pytest.mark.parametrize(
    ("name", "family", "package_command"),
    [
        ("debian-12", "debian", "apt-get install -y --no-install-recommends docker.io"),
        ("ubuntu-24.04", "debian", "apt-get install -y --no-install-recommends docker.io"),
        ("linuxmint-21", "debian", "apt-get install -y --no-install-recommends docker.io"),
        ("fedora-40", "fedora", "dnf install -y moby-engine"),
        ("rocky-9", "rhel", "dnf install -y docker-ce docker-ce-cli containerd.io"),
        ("rhel-9", "rhel", "dnf install -y docker-ce docker-ce-cli containerd.io"),
        ("amzn-2", "amazon", "yum install -y docker"),
        ("amzn-2023", "amazon", "dnf install -y docker"),
        ("alpine-3.20", "alpine", "apk add docker"),
        ("arch", "arch", "pacman -S --needed --noconfirm docker"),
        ("opensuse-leap-15.6", "suse", "zypper --non-interactive install docker"),
        ("sles-15", "suse", "zypper --non-interactive install docker"),
    ],
)
def test_each_family_installs_signed_packages(name, family, package_command):
    os = sample(name)
    assert family_of(os) == family
    plan = plan_install(os, "deploy", "systemd", user_is_root=False)
    commands_of = commands(plan)
    assert any(command.endswith(package_command) for command in commands_of), commands_of
    joined = "\n".join(commands_of)
    assert "curl" not in joined and "| sh" not in joined and "wget" not in joined
    assert plan.system == os.pretty_name


def test_rhel_uses_dockers_signed_repository():
    rhel = commands(plan_install(sample("rhel-9"), "deploy", "systemd", False))
    rocky = commands(plan_install(sample("rocky-9"), "deploy", "systemd", False))
    assert (
        "dnf config-manager --add-repo https://download.docker.com/linux/rhel/docker-ce.repo"
        in rhel
    )
    assert (
        "dnf config-manager --add-repo "
        "https://download.docker.com/linux/centos/docker-ce.repo" in rocky
    )


def test_parsing_handles_quotes_comments_and_missing_keys():
    os = parse_os_release('# comment\nID="weird linux"\nPRETTY_NAME=\'It\\\'s "odd"\'\n\nJUNK\n')
    assert os.id == "weird linux"
    minimal = parse_os_release("")
    assert minimal.id == "linux" and minimal.pretty_name == "Linux"


def test_unsupported_system_is_reported():
    with pytest.raises(UnsupportedSystem) as info:
        plan_install(sample("nixos"), "deploy", "systemd", False)
    assert "NixOS 24.05" in str(info.value)


def test_daemon_start_follows_the_init_system():
    debian = sample("debian-12")
    assert (
        commands(plan_install(debian, "u", "systemd", False))[3]
        == "systemctl enable --now docker"
    )
    assert "service docker start" in commands(plan_install(debian, "u", "sysv", False))
    alpine = plan_install(sample("alpine-3.20"), "u", "openrc", False)
    assert [step.display() for step in alpine.steps[1:3]] == [
        "rc-update add docker default",
        "rc-service docker status || rc-service docker restart",
    ]


def test_the_ssh_user_joins_the_docker_group_unless_root():
    debian = sample("debian-12")
    assert (
        commands(plan_install(debian, "deploy", "systemd", False))[-1]
        == "usermod -aG docker deploy"
    )
    assert not any(
        "usermod" in c for c in commands(plan_install(debian, "root", "systemd", True))
    )
    alpine = commands(plan_install(sample("alpine-3.20"), "deploy", "openrc", False))
    assert alpine[-1] == "addgroup deploy docker"


@pytest.mark.parametrize("user", ["o'brien", "a b", "$(touch /tmp/pwned)", "x;rm -rf /", "-rf"])
def test_every_value_reaching_the_remote_shell_is_quoted(user):
    # Users are validated long before this; the plan still never trusts a value.
    plan = plan_install(sample("debian-12"), user, "systemd", False)
    for command in commands(plan):
        words = shlex.split(command)
        if "usermod" in words:
            assert words[-1] == user  # one word, exactly the value, nothing interpreted
            assert words[-2] == "docker"


def test_detect_output_is_parsed():
    text = (
        SAMPLES / "ubuntu-24.04"
    ).read_text() + "--occ--\ninit=systemd\nuid=1000\ndocker=missing\nsudo=yes\n"
    facts = parse_detect_output(text)
    assert facts.os_release.id == "ubuntu"
    assert facts.init == "systemd" and facts.uid == 1000
    assert facts.has_sudo and not facts.engine_installed
