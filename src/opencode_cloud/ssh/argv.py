"""Pure builders of every ``ssh`` argv occ runs (like Kamal's command builders).

Each returns a list for ``subprocess`` without a shell. The destination always follows
``--`` so nothing can be read as an option, and a remote command is one string in which
every value was quoted with :func:`shlex.quote`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opencode_cloud.hosts.model import Host
from opencode_cloud.ssh.config import HostFiles

SSH = "ssh"


@dataclass(frozen=True)
class SshTarget:
    """Everything the builders need for one host: its settings and occ's files for it."""

    name: str
    hostname: str
    user: str | None
    port: int | None
    jump_host: str | None
    config_file: Path
    control_path: Path
    control_persist: str

    @classmethod
    def for_host(cls, host: Host, files: HostFiles, *, batch: bool,
                 control_persist: str) -> SshTarget:
        c = host.config
        return cls(
            name=host.name, hostname=c.hostname, user=c.user, port=c.port,
            jump_host=c.jump_host,
            config_file=files.batch_config_file if batch else files.config_file,
            control_path=files.control_path, control_persist=control_persist,
        )


def target_options(t: SshTarget) -> list[str]:
    """hosts.json's values for the target itself (they beat ~/.ssh/config, not the jumps)."""
    argv: list[str] = []
    if t.user is not None:
        argv += ["-l", t.user]
    if t.port is not None:
        argv += ["-p", str(t.port)]
    if t.jump_host is not None:
        argv += ["-J", t.jump_host]
    return argv


def _base(t: SshTarget) -> list[str]:
    return [SSH, "-F", str(t.config_file), "-o", f"ControlPath={t.control_path}",
            *target_options(t)]


def master_argv(t: SshTarget) -> list[str]:
    """Open the master connection: authenticate (prompting if allowed), then background."""
    return [
        *_base(t),
        "-o", "ControlMaster=yes",
        "-o", f"ControlPersist={t.control_persist}",
        "-o", "StreamLocalBindUnlink=yes",  # a stale forwarded socket file is replaced
        "-N", "-f", "--", t.hostname,
    ]


def check_argv(t: SshTarget) -> list[str]:
    """Is a master running? (Local only; prints ``Master running (pid=N)``.)"""
    return [*_base(t), "-O", "check", "--", t.hostname]


def exit_argv(t: SshTarget) -> list[str]:
    """Ask the master to close."""
    return [*_base(t), "-O", "exit", "--", t.hostname]


def remote_command(remote: str | Sequence[str]) -> str:
    """One string for the remote shell: an argv is quoted word by word."""
    return remote if isinstance(remote, str) else shlex.join(remote)


def ssh_argv(t: SshTarget, remote: str | Sequence[str]) -> list[str]:
    """Run a command on the host through the master (a direct connection if it is gone)."""
    return [*_base(t), "-T", "--", t.hostname, remote_command(remote)]


def forward_argv(t: SshTarget, local_socket: str, remote_socket: str) -> list[str]:
    """Ask the master to forward a local unix socket to a remote one (the Docker API)."""
    return [*_base(t), "-O", "forward", "-L", f"{local_socket}:{remote_socket}",
            "--", t.hostname]


def tcp_forward_spec(local_port: int, remote_address: str, remote_port: int) -> tuple[str, str]:
    """The two halves of ``-L`` for a TCP forward from this machine's loopback.

    Only loopback here: the forward carries a web UI, not something for the whole network.
    IPv6 addresses go in brackets, as ssh expects.
    """
    remote = f"[{remote_address}]" if ":" in remote_address else remote_address
    return f"127.0.0.1:{int(local_port)}", f"{remote}:{int(remote_port)}"


def cancel_forward_argv(t: SshTarget, local_socket: str, remote_socket: str) -> list[str]:
    return [*_base(t), "-O", "cancel", "-L", f"{local_socket}:{remote_socket}",
            "--", t.hostname]


def resolve_argv(t: SshTarget) -> list[str]:
    """``ssh -G``: the effective configuration after hosts.json and every ssh config."""
    return [SSH, "-G", "-F", str(t.config_file), *target_options(t), "--", t.hostname]


def baseline_resolve_argv(hostname: str) -> list[str]:
    """``ssh -G`` with no config file at all: OpenSSH's built-in defaults for ``hostname``."""
    return [SSH, "-G", "-F", "/dev/null", "--", hostname]


def known_key_argv(known_hosts: str, name: str) -> list[str]:
    """``ssh-keygen -F``: the fingerprint of ``name``'s key in ``known_hosts`` (hashed
    names too); exit status 1 when there is none."""
    return ["ssh-keygen", "-l", "-F", name, "-f", known_hosts]
