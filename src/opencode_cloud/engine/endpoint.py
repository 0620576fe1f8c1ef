"""A Docker endpoint yields a Docker SDK client and turns connection failures into OccErrors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opencode_cloud.errors import OccError

DF_TIMEOUT = 120.0  # a volume with many files takes the Engine long to count


class DockerUnavailable(OccError):
    """The Docker Engine of a target cannot be used. ``absent``: nothing answers on its
    socket (Docker missing or stopped), which installing or starting it can fix."""

    def __init__(self, message: str, hint: str | None = None, *, absent: bool = False) -> None:
        super().__init__(message, hint)
        self.absent = absent


# this machine's Engine only; a remote one is diagnosed over SSH (engine/remote.py)
LET_OCC = "or let occ do it: occ host install-docker local"


@dataclass
class DockerEndpoint:
    """How to reach one Docker Engine.

    ``base_url`` is what the Docker SDK takes (``unix:///var/run/docker.sock``, ``tcp://…``).
    ``host`` is the hosts.json name for a remote target, None for this machine; it only
    labels messages. ``api_version`` skips version negotiation when already known;
    ``on_version`` learns the negotiated one. ``diagnose`` finds out why an Engine did not
    answer (a remote one is asked over SSH).
    """

    base_url: str | None = None
    host: str | None = None
    api_version: str | None = None
    diagnose: Callable[[BaseException], OccError] | None = None
    on_version: Callable[[str | None], None] | None = None
    # Remote targets only: forward 127.0.0.1:local_port here to (address, port) on the host.
    forward_port: Callable[[int, str, int], None] | None = None
    connection_alive: Callable[[], bool] | None = None
    # Only where ports can be tried from here (this machine's Engine): a free port on
    # ``address`` from ``first`` on, for the hint when the configured one is taken.
    free_port_near: Callable[[str, int], int | None] | None = None
    # What a path is on the Engine's machine (engine/host_paths.py), for bind mounts:
    # inspect_path(path, docker_socket) -> HostPath.
    inspect_path: Callable[[str, str], Any] | None = None
    docker_socket: str = "/var/run/docker.sock"  # on that machine
    server_version: str | None = field(default=None, init=False)  # seen in an answer
    _client: Any = field(default=None, init=False, repr=False)

    @classmethod
    def from_environment(cls) -> DockerEndpoint:
        """This machine's Engine, honouring DOCKER_HOST like the docker CLI."""
        from opencode_cloud.engine.host_paths import local_host_path

        base_url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        socket = base_url.removeprefix("unix://") if base_url.startswith("unix://") else None
        return cls(base_url=base_url, free_port_near=free_local_port_near,
                   inspect_path=local_host_path,
                   docker_socket=socket or "/var/run/docker.sock")

    @property
    def where(self) -> str:
        return f"on {self.host}" if self.host else "on this machine"

    def client(self):
        """A connected ``docker.DockerClient`` (created once, on first use)."""
        if self._client is None:
            import docker
            from docker.errors import DockerException

            try:
                self._client = docker.DockerClient(
                    base_url=self.base_url, version=self.api_version or "auto", timeout=120
                )
            except DockerException as exc:
                raise self.explain(exc) from None
            if self.api_version is None and self.on_version is not None:
                self.on_version(self._client.api.api_version)
        return self._client

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        """``docker inspect`` of one container, None if there is none.

        On a unix socket this is one plain HTTP request (no Docker SDK import): it is all
        that ``occ status`` needs, and people feel its speed. The Engine's version (from
        its ``Server`` header) is kept in :attr:`server_version`.
        """
        from urllib.parse import quote

        return self._get_json(f"/containers/{quote(name)}/json",
                              lambda api: api.inspect_container(name))

    def container_stats(self, name: str) -> dict[str, Any] | None:
        """One sample of the container's resource use (memory, CPU time), None if there
        is no such container. The one-shot form answers at once; the plain one waits for
        a second sample (about a second)."""
        from urllib.parse import quote

        return self._get_json(f"/containers/{quote(name)}/stats?stream=false&one-shot=true",
                              lambda api: api.stats(name, stream=False, one_shot=True))

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        """``docker volume inspect`` of one volume, None if there is none."""
        from urllib.parse import quote

        return self._get_json(f"/volumes/{quote(name)}", lambda api: api.inspect_volume(name))

    def system_df(self) -> dict[str, Any]:
        """``docker system df``: every image's size and shared size, the layer store's total
        and each volume's use. Costlier than an inspect: the Engine walks the volumes (and,
        before API 1.42, which ignores ``type``, every container's writable layer)."""
        return self._get_json("/system/df?type=image&type=volume", lambda api: api.df(),
                              timeout=DF_TIMEOUT)

    def _get_json(self, path: str, through_sdk: Callable[[Any], Any],
                  timeout: float = 10.0) -> Any:
        from opencode_cloud.engine.http import unix_socket_path

        socket_path = unix_socket_path(self.base_url)
        if socket_path is None:
            from docker.errors import NotFound

            try:
                return through_sdk(self.client().api)
            except NotFound:
                return None
        from opencode_cloud.engine.http import engine_get

        try:
            answer = engine_get(socket_path, path, timeout)
        except OSError as exc:
            raise self.explain(exc) from None
        server = answer.headers.get("server", "")
        if server.startswith("Docker/"):
            self.server_version = server.split("/", 1)[1].split()[0]
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise OccError(f"Docker {self.where} refused: {answer.body.decode(errors='replace')}")
        return answer.json()

    def container_archive(self, container_id: str, path: str
                          ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """Docker's tar of ``path`` in a container (``GET /containers/ID/archive``), as
        pieces, read to its proven end. The Engine keeps the container locked until the
        answer is read or its connection closed: leaving the block closes it."""
        return self._stream_get("/containers/{0}/archive", container_id, {"path": path},
                                f"copy {path}")

    def image_archive(self, ref: str) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        """``docker save`` of one image (``GET /images/REF/get``) as pieces, read to its
        proven end (a context manager, like :meth:`container_archive`)."""
        return self._stream_get("/images/{0}/get", ref, {}, f"save the image {ref}")

    @contextlib.contextmanager
    def _stream_get(self, template: str, name: str, params: dict[str, str],
                    what: str) -> Iterator[Iterator[bytes]]:
        from urllib.parse import quote, urlencode

        from opencode_cloud.engine.http import BadAnswer, engine_stream, unix_socket_path

        url = template.format(quote(name)) + (f"?{urlencode(params)}" if params else "")
        socket_path = unix_socket_path(self.base_url)
        if socket_path is None:  # tcp:// and the like: through the SDK
            api = self.client().api
            response = api._get(api._url(template, name), params=params, stream=True)
            try:
                api._raise_for_status(response)
                yield response.iter_content(1024 * 1024)
            finally:
                response.close()
            return
        def explained(pieces: Iterator[bytes]) -> Iterator[bytes]:
            try:
                yield from pieces
            except (OSError, BadAnswer) as exc:  # the answer broke off: why?
                raise self.explain(exc) from None

        with contextlib.ExitStack() as stack:
            try:
                status, body = stack.enter_context(engine_stream(socket_path, url))
            except (OSError, BadAnswer) as exc:
                raise self.explain(exc) from None
            if status != 200:
                text = b"".join(explained(body)).decode(errors="replace")
                raise OccError(f"Docker {self.where} refused to {what}: {text}")
            yield explained(body)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def explain(self, exc: BaseException) -> OccError:
        """A person-readable error for a failure to reach the Engine."""
        if self.diagnose is not None:
            try:
                return self.diagnose(exc)
            except OccError as problem:  # e.g. SSH itself is down now
                return problem
        text = str(exc)
        if isinstance(exc, PermissionError) or "Permission denied" in text:
            return DockerUnavailable(
                f"permission denied on the Docker socket {self.where} ({self.base_url})",
                hint="Add your user to the 'docker' group (sudo usermod -aG docker $USER), "
                "then log out and in again.",
            )
        if "No such file or directory" in text or "FileNotFoundError" in text:
            return DockerUnavailable(
                f"Docker is not installed or not running {self.where} "
                f"(no socket at {self.base_url})",
                hint="Install Docker (https://docs.docker.com/engine/install/) and start it, "
                f"e.g. 'sudo systemctl start docker'; {LET_OCC}",
                absent=True,
            )
        if "Connection refused" in text:
            return DockerUnavailable(
                f"the Docker daemon is not running {self.where} ({self.base_url})",
                hint=f"Start it, e.g. 'sudo systemctl start docker'; {LET_OCC}",
                absent=True,
            )
        return DockerUnavailable(
            f"cannot reach Docker {self.where}: {text}",
            hint="Check that the Docker daemon runs: 'docker version'.",
        )


def free_local_port_near(address: str, first: int, tries: int = 50) -> int | None:
    """The first port from ``first`` on that this machine lets us bind on ``address``."""
    import socket

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for port in range(first, min(first + tries, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return port
    return None
