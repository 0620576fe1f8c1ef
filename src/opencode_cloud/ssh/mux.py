"""Ask a running OpenSSH master to open or close a unix-socket forward, directly.

``ssh -O forward`` and ``ssh -O cancel`` start an ssh process each (~6 ms, twice per
remote command); all they do is send one request over the master's control socket. This
module sends the same request itself, in the protocol OpenSSH documents in PROTOCOL.mux
(version 4): a hello each way, then MUX_C_OPEN_FWD / MUX_C_CLOSE_FWD, answered by
MUX_S_OK or MUX_S_FAILURE. Every message is a uint32 length and a payload; strings are a
uint32 length and bytes. A unix socket is given as a host with the port (uint32) -2.

Anything unexpected raises MuxError, and the caller falls back to the ssh command.
"""

from __future__ import annotations

import socket
import struct

MUX_VERSION = 4
MUX_MSG_HELLO = 0x00000001
MUX_C_OPEN_FWD = 0x10000006
MUX_C_CLOSE_FWD = 0x10000007
MUX_S_OK = 0x80000001
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_FWD_LOCAL = 1
PORT_STREAMLOCAL = 0xFFFFFFFE  # (unsigned) -2: the "host" is a unix socket path
MAX_MESSAGE = 256 * 1024


class MuxError(OSError):
    """The master could not be asked, or said no."""


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">I", len(data)) + data


def _message(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def hello() -> bytes:
    return _message(struct.pack(">II", MUX_MSG_HELLO, MUX_VERSION))


def forward_request(request_id: int, local_path: str, remote_path: str, close: bool) -> bytes:
    """MUX_C_OPEN_FWD (or CLOSE_FWD) of a local unix socket to a remote unix socket."""
    kind = MUX_C_CLOSE_FWD if close else MUX_C_OPEN_FWD
    return _message(struct.pack(">III", kind, request_id, MUX_FWD_LOCAL)
                    + _string(local_path) + struct.pack(">I", PORT_STREAMLOCAL)
                    + _string(remote_path) + struct.pack(">I", PORT_STREAMLOCAL))


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MuxError("the master closed the control connection")
        data += chunk
    return data


def _read_message(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">I", _read_exact(sock, 4))
    if size < 4 or size > MAX_MESSAGE:
        raise MuxError(f"bad control message length {size}")
    return _read_exact(sock, size)


def parse_reply(payload: bytes, request_id: int) -> None:
    """Raise MuxError unless ``payload`` is MUX_S_OK for ``request_id``."""
    if len(payload) < 8:
        raise MuxError("short reply from the master")
    kind, answered = struct.unpack(">II", payload[:8])
    if answered != request_id:
        raise MuxError(f"reply to request {answered}, not {request_id}")
    if kind == MUX_S_OK:
        return
    reason = ""
    if kind in (MUX_S_FAILURE, MUX_S_PERMISSION_DENIED) and len(payload) >= 12:
        (length,) = struct.unpack(">I", payload[8:12])
        reason = payload[12:12 + length].decode(errors="replace")
    raise MuxError(reason or f"the master answered 0x{kind:08x}")


def unix_forward(control_path: str, local_path: str, remote_path: str, *, close: bool = False,
                 timeout: float = 10.0) -> None:
    """Open (or with ``close``, cancel) the forward ``local_path`` -> ``remote_path``."""
    request_id = 1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(control_path)
            sock.sendall(hello() + forward_request(request_id, local_path, remote_path, close))
            greeting = _read_message(sock)
            if struct.unpack(">I", greeting[:4])[0] != MUX_MSG_HELLO:
                raise MuxError("the master did not say hello")
            parse_reply(_read_message(sock), request_id)
        except (OSError, struct.error) as exc:
            raise exc if isinstance(exc, MuxError) else MuxError(str(exc)) from exc
