"""A delaying TCP relay: a real round trip for lab tests (this kernel has no netem).

It listens on a loopback port, connects each client to TARGET, and delivers every chunk
DELAY ms after reading it, in both directions, order preserved; so a request/response
exchange through a relay of D ms costs at least 2 * D ms.

    with DelayRelay(target=("10.213.1.2", 22), delay_ms=25) as relay:
        ssh -p relay.port -o HostKeyAlias=10.213.1.2 USER@127.0.0.1 ...

    python tests/lab/lab_relay.py --target 10.213.1.2:22 --delay-ms 25   # prints its port

Standard library only. The relay runs its own event loop in a background thread and stops
(closing every connection) when the context exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time

_READ_SIZE = 65536


class DelayRelay:
    def __init__(
        self,
        target: tuple[str, int],
        delay_ms: float,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.target = (target[0], int(target[1]))
        self.delay = delay_ms / 1000.0
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.port: int = 0
        self.connections = 0  # accepted so far
        self.bytes_relayed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- public ------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return (self.listen_host, self.port)

    def start(self) -> DelayRelay:
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

    def __enter__(self) -> DelayRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        server = await asyncio.start_server(self._client, self.listen_host, self.listen_port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                t_reader, t_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.target), timeout=10
                )
            except (TimeoutError, OSError):
                c_writer.close()  # the client sees the connection close, as with a refusal
                return
            pipes = [
                asyncio.ensure_future(self._pipe(c_reader, t_writer)),
                asyncio.ensure_future(self._pipe(t_reader, c_writer)),
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

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                self.bytes_relayed += len(data)

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to relay to")
    parser.add_argument("--delay-ms", type=float, required=True, help="delay per direction")
    parser.add_argument("--listen-port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--max-seconds", type=float, default=3600, help="stop by itself after this long"
    )
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with DelayRelay(
        (host.strip("[]"), int(port)), args.delay_ms, listen_port=args.listen_port
    ) as r:
        print(r.port, flush=True)
        deadline = time.monotonic() + args.max_seconds
        while not stop.wait(0.2) and time.monotonic() < deadline:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
