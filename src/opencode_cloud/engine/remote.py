"""A remote target's Docker Engine, reached only through SSH.

The host's master connection forwards the remote Docker socket to a unix socket in occ's
private 0700 folder; the Docker SDK talks to that. Never a TCP port: any local user could
reach one, and the Docker API gives root on the remote. The forward goes away when the
command ends (also on Ctrl-C and errors); the master stays for the next command.
"""

from __future__ import annotations

from opencode_cloud.engine import versions
from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.errors import OccError
from opencode_cloud.hosts.model import Host
from opencode_cloud.report import SILENT, Reporter


class RemoteEngine:
    """Context manager: ``with RemoteEngine(host, reporter) as endpoint: …``.

    ``connection`` stays available, so that the CLI can repair what the endpoint could
    not reach (install Docker there, after asking) over the same SSH connection.
    """

    def __init__(self, host: Host, reporter: Reporter = SILENT) -> None:
        from opencode_cloud.ssh.connection import HostConnection

        self.host = host
        self.connection = HostConnection(host, reporter)
        self.endpoint: DockerEndpoint | None = None

    @property
    def version_key(self) -> str:
        # The connection settings' key: a host re-pointed elsewhere learns its version anew.
        return self.connection.files.key

    def __enter__(self) -> DockerEndpoint:
        socket = self.connection.docker_forward(self.host.config.effective_docker_socket)
        self.endpoint = DockerEndpoint(
            base_url=f"unix://{socket}",
            host=self.host.name,
            api_version=versions.known_version(self.version_key),
            diagnose=self.diagnose,
            on_version=self.remember,
            forward_port=self.connection.forward_tcp,
            connection_alive=self.connection.master_alive,
            inspect_path=self.inspect_path,
            docker_socket=self.host.config.effective_docker_socket,
        )
        return self.endpoint

    def inspect_path(self, path: str, docker_socket: str):
        """What ``path`` is on the host, asked over the same SSH connection."""
        from opencode_cloud.engine.host_paths import host_path_command, parse_host_path

        answer = self.connection.run(host_path_command(path, docker_socket), timeout=60)
        output = answer.stdout.decode(errors="replace")
        try:
            return parse_host_path(path, output)
        except ValueError:
            raise OccError(
                f"could not check {path} on {self.host.name}: "
                f"{answer.stderr.decode(errors='replace').strip() or output.strip()}",
                hint=f"Check the host with: occ host test {self.host.name}") from None

    def __exit__(self, *exc: object) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
        self.connection.close()

    def remember(self, version: str | None) -> None:
        versions.remember_version(self.version_key, version)

    def diagnose(self, _exc: BaseException) -> OccError:
        """Why the forwarded Engine did not answer: ask the host itself (issue-4 probe)."""
        from opencode_cloud.engine.probe import probe_host

        self.remember(None)  # the Engine may have changed: negotiate next time
        report = probe_host(self.connection)
        if report.problem is not None:
            return report.problem
        return OccError(
            f"the Docker Engine on {self.host.name} stopped answering",
            hint=f"Check it with: occ host test {self.host.name}",
        )
