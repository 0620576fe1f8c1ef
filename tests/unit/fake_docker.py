"""One small stand-in for the Docker SDK client, shared by every unit test of the core.

It keeps containers, images and volumes in dicts and raises the SDK's own exceptions
(``docker.errors.NotFound`` …), so the service layer's ``except NotFound`` paths run as they
do against a real Engine. It also records what was asked of it, so tests assert calls.

Also here: a :class:`RecordingReporter`, a :class:`FakeClock` for code that polls,
:func:`service_context`, which wires them into a ``ServiceContext`` whose endpoint hands
out the fake client, an :class:`EngineSocket` (a real unix socket answering HTTP like an
Engine) and a :class:`FakeConnection` in place of an SSH ``HostConnection``.
"""

from __future__ import annotations

import itertools
import json
import socketserver
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from docker.errors import APIError, ImageNotFound, NotFound

from opencode_cloud.config.model import Config
from opencode_cloud.engine.endpoint import DockerEndpoint
from opencode_cloud.report import Reporter
from opencode_cloud.service.context import ServiceContext
from opencode_cloud.service.names import ServiceNames

_IDS = itertools.count(1)

HEALTHY = (0, b'{"healthy": true, "version": "1.18.33"}')


def api_error(explanation: str) -> APIError:
    """An APIError as the SDK raises it when the Engine answers with an error."""
    return APIError("500 Server Error", explanation=explanation)


class FakeImage:
    def __init__(self, client: FakeClient, tags: list[str], labels: dict | None = None,
                 image_id: str | None = None) -> None:
        self.client = client
        self.id = image_id or f"sha256:{next(_IDS):064x}"
        self.tags = list(tags)
        self.labels = labels or {}
        self.size = 100 * 1024 * 1024  # what /system/df says it takes; each its own layers
        self.created = next(_IDS)  # later images are newer

    @property
    def short_id(self) -> str:
        return self.id[:19]

    def tag(self, ref: str) -> bool:
        self.client.calls.append(("tag", self.id, ref))
        self.client.images.add(self, ref)
        return True

    def __repr__(self) -> str:
        return f"FakeImage({self.tags}, {self.id[-4:]})"


class FakeImages:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.by_ref: dict[str, FakeImage] = {}
        self.untagged: list[FakeImage] = []  # images whose every tag moved elsewhere

    def add(self, image: FakeImage, *refs: str) -> FakeImage:
        for ref in refs or image.tags:
            old = self.by_ref.get(ref)
            if old is not None and old is not image and ref in old.tags:
                old.tags.remove(ref)  # a tag moves, as in Docker
                if not old.tags:
                    self.untagged.append(old)
            self.by_ref[ref] = image
            if ref not in image.tags:
                image.tags.append(ref)
        return image

    def make(self, ref: str, labels: dict | None = None) -> FakeImage:
        return self.add(FakeImage(self.client, [ref], labels))

    def get(self, ref: str) -> FakeImage:
        if ref in self.by_ref:
            return self.by_ref[ref]
        for image in self.by_ref.values():
            if image.id == ref:
                return image
        raise ImageNotFound(f"No such image: {ref}")


class FakeVolume:
    def __init__(self, volumes: FakeVolumes, name: str, labels: dict | None) -> None:
        self.volumes = volumes
        self.name = name
        self.attrs = {"Name": name, "Labels": labels}

    def remove(self, force: bool = False) -> None:
        self.volumes.by_name.pop(self.name)
        self.volumes.removed.append(self.name)


class FakeVolumes:
    def __init__(self) -> None:
        self.by_name: dict[str, FakeVolume] = {}
        self.created: list[str] = []
        self.removed: list[str] = []

    def get(self, name: str) -> FakeVolume:
        if name not in self.by_name:
            raise NotFound(f"no such volume: {name}")
        return self.by_name[name]

    def create(self, name: str, labels: dict | None = None) -> FakeVolume:
        self.created.append(name)
        self.by_name[name] = FakeVolume(self, name, labels)
        return self.by_name[name]

    def list(self, filters: dict | None = None) -> list[FakeVolume]:
        """Docker's ``label=KEY=VALUE`` filter (the only one occ uses)."""
        wanted = (filters or {}).get("label")
        found = list(self.by_name.values())
        if wanted:
            key, _, value = wanted.partition("=")
            found = [v for v in found if (v.attrs["Labels"] or {}).get(key) == value]
        return found


class FakeContainer:
    """A container whose health answers and start failures a test chooses.

    ``exec_answers``: what each exec (a probe) returns in turn, an exception to raise
    or a ``(code, bytes)`` pair; the last one repeats. ``start_error`` is raised by the next
    ``start()``; ``stop_after_start`` makes it exit right after starting (a crash).
    """

    def __init__(self, client: FakeClient, name: str, image: FakeImage,
                 labels: dict | None = None, kwargs: dict | None = None) -> None:
        self.client = client
        self.name = name
        self.image = image
        self.labels = labels or {}
        self.kwargs = kwargs or {}
        self.id = f"{next(_IDS):064x}"
        self.status = "created"
        self.exit_code = 0
        self.restart_count = 0
        self.exec_answers: list[Any] = [HEALTHY]
        self.execs: list[tuple[list[str], str | None]] = []
        self.start_error: Exception | None = None
        self.stop_after_start = False
        self.log_bytes = b"opencode starting\nlistening on 3000\n"
        self.log_calls: list[dict] = []
        self.health_log: dict | None = None
        self.started_at = "2024-05-01T10:00:00.123456789Z"
        self.removed = False

    # -- what the SDK's Container offers ----------------------------------------------------
    @property
    def attrs(self) -> dict:
        # Docker counts a container in a restart loop as running (State.Restarting too).
        running = self.status in ("running", "restarting")
        state: dict[str, Any] = {"Status": self.status, "Running": running,
                                 "Restarting": self.status == "restarting",
                                 "ExitCode": self.exit_code,
                                 "StartedAt": self.started_at}
        if self.health_log is not None:
            state["Health"] = self.health_log
        ports = {}
        for port, (address, host_port) in self.kwargs.get("ports", {}).items():
            ports[port] = [{"HostIp": address, "HostPort": str(host_port)}]
        return {"Id": self.id, "Name": f"/{self.name}", "State": state, "Image": self.image.id,
                "RestartCount": self.restart_count,
                "Config": {"Image": self.image.tags[0] if self.image.tags else self.image.id,
                           "Labels": self.labels},
                "NetworkSettings": {"Ports": ports}}

    def reload(self) -> None:
        self.client.calls.append(("reload", self.name))

    def start(self) -> None:
        self.client.calls.append(("start", self.name))
        if self.start_error is not None:
            error, self.start_error = self.start_error, None
            raise error
        if self.stop_after_start:
            self.status, self.exit_code = "exited", 1
        else:
            self.status = "running"

    def stop(self, timeout: int = 10) -> None:
        self.client.calls.append(("stop", self.name, timeout))
        self.status = "exited"

    def rename(self, name: str) -> None:
        self.client.calls.append(("rename", self.name, name))
        if self.status == "restarting":  # what the Engine answers between two restarts
            raise APIError("409 Client Error", explanation=f"sandbox {'d' * 64} not found")
        if name in self.client.containers.by_name:
            raise APIError(f"Conflict. The container name \"/{name}\" is already in use")
        self.client.containers.by_name.pop(self.name, None)
        self.name = name
        self.client.containers.by_name[name] = self

    def remove(self, force: bool = False) -> None:
        self.client.calls.append(("remove", self.name, force))
        if self.removed:
            raise NotFound(f"no such container: {self.name}")
        self.removed = True
        self.client.containers.by_name.pop(self.name, None)

    def logs(self, **kwargs: Any) -> Any:
        self.log_calls.append(kwargs)
        if isinstance(self.log_bytes, Exception):
            raise self.log_bytes
        if kwargs.get("stream"):
            return iter(self.log_bytes if isinstance(self.log_bytes, list)
                        else [self.log_bytes])
        return self.log_bytes


class FakeContainers:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.by_name: dict[str, FakeContainer] = {}
        self.created: list[dict] = []
        #: applied to each container create() makes, before it is returned
        self.on_create: Callable[[FakeContainer], None] | None = None

    def get(self, name: str) -> FakeContainer:
        if name not in self.by_name:
            raise NotFound(f"No such container: {name}")
        return self.by_name[name]

    def create(self, **kwargs: Any) -> FakeContainer:
        self.created.append(kwargs)
        image = self.client.images.get(kwargs["image"])
        container = FakeContainer(self.client, kwargs["name"], image, kwargs.get("labels"),
                                  kwargs)
        if self.on_create is not None:
            self.on_create(container)
        self.by_name[container.name] = container
        return container

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:
        """Docker's ``name`` filter matches substrings of the name."""
        part = (filters or {}).get("name", "")
        return [c for name, c in self.by_name.items() if part in name]

    def add(self, name: str, image: FakeImage, labels: dict | None = None,
            status: str = "running") -> FakeContainer:
        container = FakeContainer(self.client, name, image, labels)
        container.status = status
        self.by_name[name] = container
        return container


class FakeAPI:
    """The low-level ``client.api``: build and pull streams, inspect."""

    api_version = "1.41"

    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.builds: list[dict] = []
        self.pulls: list[str] = []
        self.build_stream: Iterable[dict] | Exception | None = None  # None: success
        self.pull_stream: Iterable[dict] | Exception | None = None
        self.execs: dict[str, tuple[int, bytes]] = {}

    def build(self, **kwargs: Any) -> Iterable[dict]:
        kwargs["context"] = kwargs["fileobj"].read()
        self.builds.append(kwargs)
        if isinstance(self.build_stream, Exception):
            raise self.build_stream
        if self.build_stream is not None:
            return iter(self.build_stream)
        self.client.images.add(FakeImage(self.client, [kwargs["tag"]], dict(kwargs["labels"])))
        return iter([{"stream": "Step 1/2 : FROM debian\n"}, {"stream": " ---> abc\n\n"},
                     {"stream": "Successfully built abc\n"}])

    def pull(self, ref: str, stream: bool = False, decode: bool = False) -> Iterable[dict]:
        self.pulls.append(ref)
        if isinstance(self.pull_stream, Exception):
            raise self.pull_stream
        events = list(self.pull_stream or [{"status": "Pull complete"}])
        if not any("error" in e for e in events):
            self.client.images.add(FakeImage(self.client, [ref]))
        return iter(events)

    def inspect_container(self, name: str) -> dict:
        return self.client.containers.get(name).attrs

    # -- exec, as occ runs it (engine/exec_stream.py): a real socket carries Docker's frames
    def exec_create(self, container_id: str, cmd: list[str], user: str = "", **_: Any) -> dict:
        container = next(c for c in self.client.containers.by_name.values()
                         if c.id == container_id)
        container.execs.append((cmd, user))
        answer = container.exec_answers[0] if len(container.exec_answers) == 1 else \
            container.exec_answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.execs[f"exec{len(self.execs)}"] = answer
        return {"Id": f"exec{len(self.execs) - 1}"}

    def exec_start(self, exec_id: str, tty: bool = False, socket: bool = False) -> Any:
        import socket as sockets
        import struct

        ours, theirs = sockets.socketpair()
        _code, output = self.execs[exec_id]
        output = output or b""
        theirs.sendall(output if tty else struct.pack(">BxxxL", 1, len(output)) + output)
        theirs.close()
        return ours

    def exec_inspect(self, exec_id: str) -> dict:
        return {"ExitCode": self.execs[exec_id][0]}

    # -- disk: /system/df, the container list and image removal, as the Engine does them ---
    def images_list(self) -> list[FakeImage]:
        unique = {id(i): i for i in self.client.images.by_ref.values()}
        return list(unique.values()) + [i for i in self.client.images.untagged
                                        if id(i) not in unique]

    def users_of(self, image: FakeImage) -> int:
        return sum(1 for c in self.client.containers.by_name.values() if c.image is image)

    def df(self) -> dict:
        images = self.images_list()
        return {
            "LayersSize": sum(i.size for i in images),
            "Images": [{"Id": i.id, "RepoTags": list(i.tags) or ["<none>:<none>"],
                        "Labels": dict(i.labels) or None, "Size": i.size, "SharedSize": 0,
                        "Containers": self.users_of(i), "Created": i.created}
                       for i in images],
            "Volumes": [{"Name": v.name, "Labels": v.attrs["Labels"],
                         "UsageData": {"Size": 4096, "RefCount": 0}}
                        for v in self.client.volumes.by_name.values()],
        }

    def containers(self, all: bool = False) -> list[dict]:  # noqa: A002  (the SDK's name)
        return [{"Id": c.id, "Names": [f"/{c.name}"], "ImageID": c.image.id}
                for c in self.client.containers.by_name.values()
                if all or c.status == "running"]

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> list:
        """By tag: untag, and delete with the last tag. By ID: delete, which the Engine
        refuses for an image with more than one tag unless forced."""
        self.client.calls.append(("remove_image", image, force))
        found = next((i for i in self.images_list() if image in (i.id, *i.tags)), None)
        if found is None:
            raise NotFound(f"No such image: {image}")
        if self.users_of(found) and not force:
            raise APIError("409 Client Error", explanation="conflict: unable to delete "
                           f"{found.id[7:19]} (must be forced) - image is being used")
        if image == found.id and len(found.tags) > 1 and not force:
            raise APIError("409 Client Error", explanation="conflict: unable to delete "
                           f"{found.id[7:19]} (must be forced) - image is referenced in "
                           "multiple repositories")
        for ref in [image] if image in found.tags else list(found.tags):
            self.client.images.by_ref.pop(ref, None)
            found.tags.remove(ref)
        if found.tags:
            return [{"Untagged": image}]
        if found in self.client.images.untagged:
            self.client.images.untagged.remove(found)
        return [{"Untagged": image}, {"Deleted": found.id}]


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.images = FakeImages(self)
        self.volumes = FakeVolumes()
        self.containers = FakeContainers(self)
        self.api = FakeAPI(self)
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _recorded(name: str) -> Callable[..., None]:
    def method(self: RecordingReporter, *args: Any) -> None:
        self.events.append((name, *args))
    return method


class RecordingReporter(Reporter):
    """Remembers every call as ``(method, *args)``."""

    def __init__(self, interactive: bool = False) -> None:
        self.interactive = interactive
        self.events: list[tuple] = []

    step = _recorded("step")
    activity = _recorded("activity")
    detail = _recorded("detail")
    output = _recorded("output")
    progress = _recorded("progress")
    info = _recorded("info")
    success = _recorded("success")
    notice = _recorded("notice")
    warn = _recorded("warn")

    def of(self, kind: str) -> list:
        """The arguments of every ``kind`` call (the text alone for one-argument calls)."""
        found = [event[1:] for event in self.events if event[0] == kind]
        return [args[0] if len(args) == 1 else args for args in found]


class FakeClock:
    """``monotonic`` and ``sleep`` for polling code: sleeping moves time, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fake_endpoint(client: FakeClient | None = None, **kwargs: Any) -> DockerEndpoint:
    """A DockerEndpoint (not on a unix socket) whose SDK client is the fake."""
    endpoint = DockerEndpoint(base_url="tcp://fake-engine:2375", **kwargs)
    endpoint._client = client or FakeClient()
    return endpoint


def service_context(client: FakeClient | None = None, config: Config | None = None,
                    reporter: Reporter | None = None, **endpoint_kwargs: Any) -> ServiceContext:
    return ServiceContext(fake_endpoint(client or FakeClient(), **endpoint_kwargs),
                          config or Config(), ServiceNames("t1"),
                          reporter or RecordingReporter())


def summary_label(container: FakeContainer) -> dict:
    from opencode_cloud.service.spec import SUMMARY_LABEL

    return json.loads(container.labels[SUMMARY_LABEL])


class EngineSocket:
    """A tiny HTTP/1.0 server on a unix socket file, answering like a Docker Engine.

    ``routes``: request path -> ``(status, body, headers)``; other paths get a 404. The
    paths asked are kept in ``requests``. Use as a context manager.
    """

    def __init__(self, path: Path, routes: dict[str, tuple[int, bytes, dict[str, str]]]):
        self.path = path
        self.routes = routes
        self.requests: list[str] = []
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline().decode()
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.rfile.read(length)  # unread, it would make the close a reset
                target = request.split()[1]
                owner.requests.append(target)
                status, body, headers = owner.routes.get(target, (404, b'{"message": '
                                                         b'"no such container"}', {}))
                head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                self.wfile.write(f"HTTP/1.0 {status} X\r\n{head}\r\n".encode() + body)

        self.server = socketserver.UnixStreamServer(str(path), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> EngineSocket:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def json_route(payload: Any, status: int = 200,
               headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json",
                                                  **(headers or {})}


class FakeConnection:
    """Stands in for ``ssh.connection.HostConnection``: forwards are paths chosen by the
    test, remote commands answer from ``answers`` (first matching substring)."""

    def __init__(self, host: Any, reporter: Reporter | None = None, **_: Any) -> None:
        self.host = host
        self.reporter = reporter
        self.files = SimpleNamespace(key=f"key-{host.name}")
        self.calls: list[tuple] = []
        self.forward_path = "/nonexistent/occ-test/docker.sock"
        self.answers: list[tuple[str, subprocess.CompletedProcess]] = []
        self.alive = True

    def ensure_master(self) -> bool:
        self.calls.append(("ensure_master",))
        return True

    def docker_forward(self, remote_path: str) -> str:
        self.calls.append(("docker_forward", remote_path))
        return self.forward_path

    def forward_tcp(self, local_port: int, address: str, port: int) -> None:
        self.calls.append(("forward_tcp", local_port, address, port))

    def master_alive(self) -> bool:
        return self.alive

    def run(self, remote: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        self.calls.append(("run", remote))
        for needle, answer in self.answers:
            if needle in remote:
                return answer
        return subprocess.CompletedProcess(remote, 127, b"", b"sh: not found\n")

    def close(self) -> None:
        self.calls.append(("close",))


def answered(stdout: str, returncode: int = 0) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess("", returncode, stdout.encode(), b"")
