"""Installing or starting Docker on this machine: the remote installer with a local runner.

:class:`LocalMachine` is the installer's connection for this machine. It takes the very
commands the installer sends a host over SSH (the detection script, the plan as one shell
script under one ``sudo``) and runs them here with ``sh -c`` through the same process
helpers, so the plans, the questions, ``--yes``, sudo's password prompt and the step
reports are the ones of ``occ host install-docker NAME``. Only two things differ: there is
no socket to forward (occ talks to the local socket itself), and no new login can give
this process the ``docker`` group, so when the group is what is missing occ says so.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable

from opencode_cloud.errors import OccError
from opencode_cloud.hosts.model import DEFAULT_DOCKER_SOCKET, Host, HostConfig
from opencode_cloud.install.installer import (
    INSTALL_TIMEOUT,
    LOCAL,
    DockerInstallFailed,
    InstallReport,
    offer_docker_install,
)
from opencode_cloud.report import Reporter
from opencode_cloud.ssh.connection import run_process, stream_process


def local_command(command: str) -> list[str]:
    """The argv that runs one of the installer's shell command lines here (they are made
    for a remote login shell, which runs them with ``sh -c`` as well)."""
    return ["sh", "-c", command]


class LocalMachine:
    """What the installer needs of a connection (run, stream, the Engine's socket), here."""

    def __init__(self, socket: str = DEFAULT_DOCKER_SOCKET) -> None:
        self.socket = socket
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.host = Host(LOCAL, HostConfig(hostname="localhost", user=self.user,
                                           docker_socket=socket))

    def run(self, command: str, *, timeout: float | None = None
            ) -> subprocess.CompletedProcess[bytes]:
        return run_process(local_command(command), timeout=timeout)

    def stream(self, command: str, *, on_line: Callable[[str], None],
               answer: Callable[[str], str | None] | None = None,
               timeout: float | None = None) -> int:
        return stream_process(local_command(command), on_line=on_line, answer=answer,
                              timeout=timeout)

    def docker_forward(self, socket: str) -> str:
        """Nothing to forward: the Engine's socket is on this machine."""
        return socket

    def lacks_access(self, socket: str) -> bool:
        """The socket is there but this process may not use it (not in the group yet)."""
        return os.path.exists(socket) and not os.access(socket, os.R_OK | os.W_OK)

    def unusable(self, socket: str) -> OccError:
        """Why the Engine does not answer after the plan ran."""
        if self.lacks_access(socket):
            return OccError(
                f"Docker runs on this machine, but this login of {self.user} is not in the "
                "docker group yet",
                hint="Log out and in again (or start a shell with 'newgrp docker'), then run "
                "the occ command again.",
            )
        moved = (f" DOCKER_HOST points occ at {socket}; the daemon listens on "
                 f"{DEFAULT_DOCKER_SOCKET} unless its configuration says otherwise."
                 if socket != DEFAULT_DOCKER_SOCKET else "")
        return DockerInstallFailed(
            f"Docker was set up on this machine, but no Engine answers on {socket}",
            hint=f"Look at the daemon's log (journalctl -u docker, or /var/log/docker.log)."
            f"{moved} Then run: occ status",
            host=LOCAL,
        )


def socket_of(base_url: str | None) -> str:
    """The unix socket of this machine's Engine (DOCKER_HOST), or an error: occ installs
    Docker only where it can reach the Engine's socket on this machine."""
    from opencode_cloud.engine.http import unix_socket_path

    path = unix_socket_path(base_url or f"unix://{DEFAULT_DOCKER_SOCKET}")
    if path is None:
        raise OccError(
            f"DOCKER_HOST is {base_url}: that Engine is not a socket on this machine, so occ "
            "cannot install or start it",
            hint="Start that Engine where it runs, or unset DOCKER_HOST to use this "
            "machine's own.",
        )
    return path


def offer_local_docker_install(base_url: str | None, reporter: Reporter, *,
                               assume_yes: bool, interactive: bool | None = None,
                               confirm: Callable[[str], bool] | None = None,
                               timeout: float = INSTALL_TIMEOUT) -> InstallReport | None:
    """Install or start Docker on this machine after asking, as for a remote host (see
    :func:`~opencode_cloud.install.installer.offer_docker_install`); None when its Engine
    already answers."""
    from opencode_cloud.install.installer import engine_info

    machine = LocalMachine(socket_of(base_url))
    if engine_info(machine, machine.socket) is not None:
        return None
    if machine.socket != DEFAULT_DOCKER_SOCKET:
        reporter.notice(f"occ uses the Engine at DOCKER_HOST (unix://{machine.socket}); a "
                        f"daemon started here listens on {DEFAULT_DOCKER_SOCKET} unless its "
                        "configuration says otherwise.")
    return offer_docker_install(machine, machine.host, reporter, assume_yes=assume_yes,
                                interactive=interactive, confirm=confirm, timeout=timeout)
