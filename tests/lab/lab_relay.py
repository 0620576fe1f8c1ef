"""A delaying TCP relay: a real round trip for lab tests (this kernel has no netem).

It listens on a loopback port, connects each client to TARGET, and delivers every chunk
DELAY ms after reading it, in both directions, order preserved; so a request/response
exchange through a relay of D ms costs at least 2 * D ms.

    with DelayRelay(target=("10.213.1.2", 22), delay_ms=25) as relay:
        ssh -p relay.port -o HostKeyAlias=10.213.1.2 USER@127.0.0.1 ...

    with fleet_relays(delay_ms=25) as relays:      # the lab's 20 fleet hosts, from lab.json
        relays.ports                               # {"h1": PORT, "h2": PORT, "h5": ...}
        relays.ssh_config(user, key, known_hosts)  # Host h1 / h2 / ... blocks

    python tests/lab/lab_relay.py --target 10.213.1.2:22 --delay-ms 25   # prints its port
    python tests/lab/lab_relay.py --fleet --delay-ms 25    # prints "NAME PORT" per host

Standard library only. A RelayGroup serves all its listeners from one event loop in one
background thread, and stops (closing every connection) when the context exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Self

_READ_SIZE = 65536
LAB_JSON = Path("/var/tmp/occ-lab/lab.json")


class Relay:
    """One listener of a relay: where it listens, where it relays to, what it saw."""

    def __init__(self, name: str, target: tuple[str, int], listen_port: int = 0) -> None:
        self.name = name
        self.target = (target[0], int(target[1]))
        self.listen_port = listen_port
        self.listen_host = "127.0.0.1"
        self.port: int = 0  # known once the relay runs
        self.connections = 0  # accepted so far
        self.bytes_relayed = 0

    @property
    def address(self) -> tuple[str, int]:
        return (self.listen_host, self.port)


class RelayGroup:
    """Many delaying listeners, one per target, served by one event loop in one thread.

        with RelayGroup({"h5": ("10.213.5.2", 22), "h6": ("10.213.6.2", 22)}, 25) as relays:
            relays.ports["h5"]         # 127.0.0.1:that port reaches h5's sshd, 50 ms RTT
            relays["h6"].connections   # a Relay: .port .target .connections .bytes_relayed
            relays.ssh_config(user, key, known_hosts)   # Host h5 ... blocks for ssh -F / occ

    ``fleet_relays()`` builds one for the lab's hosts from lab.json.
    """

    def __init__(
        self,
        targets: Mapping[str, tuple[str, int]],
        delay_ms: float,
        listen_host: str = "127.0.0.1",
        listen_ports: Mapping[str, int] | None = None,
    ) -> None:
        if not targets:
            raise ValueError("a relay group needs at least one target")
        self.delay = delay_ms / 1000.0
        self.delay_ms = delay_ms
        self.listen_host = listen_host
        self.relays: dict[str, Relay] = {}
        for name, target in targets.items():
            relay = Relay(name, target, (listen_ports or {}).get(name, 0))
            relay.listen_host = listen_host
            self.relays[name] = relay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- public ------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Relay:
        return self.relays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.relays)

    def __len__(self) -> int:
        return len(self.relays)

    @property
    def ports(self) -> dict[str, int]:
        return {name: relay.port for name, relay in self.relays.items()}

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="lab-delay-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay relay did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the delay relay failed to start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ssh_config(
        self,
        user: str,
        identity_file: str,
        known_hosts: str | Path,
        host_key_aliases: Mapping[str, str] | None = None,
    ) -> str:
        """An ssh_config with one ``Host NAME`` block per relay: 127.0.0.1 and the relay's
        port, the target's address as HostKeyAlias (so known_hosts lines of the real
        addresses, lab.json's ``known_hosts_line``, match), the key and known_hosts given.
        For ``ssh -F FILE NAME`` and for occ (``OCC_SSH_CONFIG=FILE``, ``occ host add NAME
        NAME``)."""
        blocks = []
        for name, relay in self.relays.items():
            alias = (host_key_aliases or {}).get(name, relay.target[0])
            blocks.append(
                f"Host {name}\n"
                f"  HostName {relay.listen_host}\n"
                f"  Port {relay.port}\n"
                f"  HostKeyAlias {alias}\n"
                f"  User {user}\n"
                f"  IdentityFile {identity_file}\n"
                "  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {known_hosts}\n"
                "  StrictHostKeyChecking accept-new\n"
            )
        return "".join(blocks)

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        servers = []
        try:
            for relay in self.relays.values():
                server = await asyncio.start_server(
                    functools.partial(self._client, relay), relay.listen_host, relay.listen_port
                )
                relay.port = server.sockets[0].getsockname()[1]
                servers.append(server)
            self._ready.set()
            await self._stop.wait()
        finally:
            for server in servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for server in servers:
                await server.wait_closed()

    async def _client(
        self, relay: Relay, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        relay.connections += 1
        try:
            try:
                t_reader, t_writer = await asyncio.wait_for(
                    asyncio.open_connection(*relay.target), timeout=10
                )
            except (TimeoutError, OSError):
                c_writer.close()  # the client sees the connection close, as with a refusal
                return
            pipes = [
                asyncio.ensure_future(self._pipe(relay, c_reader, t_writer)),
                asyncio.ensure_future(self._pipe(relay, t_reader, c_writer)),
            ]
            try:
                # Both directions end at end of stream; a failed write in one ends both.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for w in (t_writer, c_writer):
                    w.close()
                for p in pipes:
                    p.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                for w in (t_writer, c_writer):
                    with contextlib.suppress(Exception):
                        await w.wait_closed()
        except asyncio.CancelledError:
            c_writer.close()
        finally:
            self._tasks.discard(task)

    async def _pipe(
        self, relay: Relay, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Reads chunks as they come and writes each one DELAY after it was read."""
        loop = asyncio.get_running_loop()
        # Bounded, so a fast sender is slowed down instead of filling memory.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                while (left := due - loop.time()) > 0:
                    await asyncio.sleep(left)
                if not data:  # end of stream, delayed like the data before it
                    if writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                relay.bytes_relayed += len(data)

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                reading = asyncio.ensure_future(reader.read(_READ_SIZE))
                await asyncio.wait({reading, sender}, return_when=asyncio.FIRST_COMPLETED)
                if sender.done() and not reading.done():  # the write side failed
                    reading.cancel()
                    await sender  # raises what failed
                try:
                    data = reading.result()
                except (OSError, asyncio.CancelledError):
                    data = b""
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(BaseException):
                    await sender


class DelayRelay(RelayGroup):
    """A relay group of one listener, with that listener's figures as its own."""

    def __init__(
        self,
        target: tuple[str, int],
        delay_ms: float,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        super().__init__({"relay": target}, delay_ms, listen_host, {"relay": listen_port})
        self._relay = self.relays["relay"]

    @property
    def target(self) -> tuple[str, int]:
        return self._relay.target

    @property
    def listen_port(self) -> int:
        return self._relay.listen_port

    @property
    def port(self) -> int:
        return self._relay.port

    @property
    def address(self) -> tuple[str, int]:
        return self._relay.address

    @property
    def connections(self) -> int:
        return self._relay.connections

    @property
    def bytes_relayed(self) -> int:
        return self._relay.bytes_relayed


def lab_targets(
    names: Iterable[str] | None = None, lab_json: str | Path = LAB_JSON
) -> dict[str, tuple[str, int]]:
    """{name: (address, 22)} of lab hosts from lab.json; NAMES default to the fleet (the 20
    ordinary hosts, which the machine reaches directly)."""
    data = json.loads(Path(lab_json).read_text())
    hosts = data["hosts"]
    chosen = list(names) if names is not None else list(data["fleet"])
    unknown = [n for n in chosen if n not in hosts]
    if unknown:
        raise KeyError(f"no lab hosts {unknown} in {lab_json} (there are {sorted(hosts)})")
    jump_only = [n for n in chosen if hosts[n].get("jump_only")]
    if jump_only:
        raise ValueError(f"{jump_only} are reachable only through a jump host, not relayable")
    return {n: (hosts[n]["address"], int(hosts[n]["port"])) for n in chosen}


def fleet_relays(
    delay_ms: float = 25, names: Iterable[str] | None = None, lab_json: str | Path = LAB_JSON
) -> RelayGroup:
    """A started RelayGroup in front of the lab's hosts' sshd (default: all 20 of the fleet),
    DELAY_MS each way (25 ms: a 50 ms round trip). Stop it, or use it as a context manager:

        with fleet_relays(25) as relays:
            config.write_text(relays.ssh_config(lab["user"], lab["keys"]["plain"], kh))
    """
    return RelayGroup(lab_targets(names, lab_json), delay_ms).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--target", help="HOST:PORT to relay to")
    what.add_argument("--fleet", action="store_true", help="one relay per fleet host of lab.json")
    parser.add_argument("--delay-ms", type=float, required=True, help="delay per direction")
    parser.add_argument("--listen-port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--max-seconds", type=float, default=3600, help="stop by itself after this long"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.fleet:
        group: RelayGroup = fleet_relays(args.delay_ms)
        for name, port in group.ports.items():
            print(name, port, flush=True)
    else:
        host, _, port = args.target.rpartition(":")
        group = DelayRelay(
            (host.strip("[]"), int(port)), args.delay_ms, listen_port=args.listen_port
        ).start()
        print(group.relays["relay"].port, flush=True)
    with group:
        deadline = time.monotonic() + args.max_seconds
        while not stop.wait(0.2) and time.monotonic() < deadline:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
