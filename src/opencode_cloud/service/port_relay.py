"""Provider logins on a remote host: this machine's ``127.0.0.1:PORT`` relayed to the
sandbox's own loopback ``127.0.0.1:PORT``.

OAuth logins (OpenAI on 1455, a Gemini plugin on 8085) send the browser back to a
``localhost`` callback that opencode listens on inside its container. The browser runs
here, so each callback port gets a listener on this machine's loopback; every connection
to it becomes one exec in the container that joins the container's own loopback port
(bash's ``/dev/tcp``), carried by the Engine's API over the target's forwarded socket:
no port is opened on the host or in the container.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from opencode_cloud.engine.exec_stream import STDOUT, open_exec
from opencode_cloud.service.context import ServiceContext

# Joins the container's 127.0.0.1:$1 and copies both ways until either side ends.
JOIN = 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; cat <&3 & cat >&3; wait'


class PortRelay:
    """Listens on 127.0.0.1:``port`` here until :meth:`close`."""

    def __init__(self, ctx: ServiceContext, port: int) -> None:
        self.ctx = ctx
        self.port = port
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", port))  # raises OSError when taken here
        except OSError:
            self._listener.close()
            raise
        self._listener.listen(8)
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name=f"occ-relay-{port}").start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        api = self.ctx.client.api
        with contextlib.closing(client):
            container = self.ctx.container()
            if container is None or container.status != "running":
                return
            exec_id = api.exec_create(container.id, ["bash", "-c", JOIN, "occ-relay",
                                                     str(self.port)],
                                      stdin=True, user="opencoder")["Id"]
            stream = open_exec(api, exec_id)
            with contextlib.closing(stream):
                threading.Thread(target=_copy, args=(client, stream.sock), daemon=True).start()
                with contextlib.suppress(OSError):
                    for which, data in stream.frames():
                        if which == STDOUT:  # the port's bytes; stderr is bash's own words
                            client.sendall(data)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()


def _copy(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
