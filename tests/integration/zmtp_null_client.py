"""A control-channel client written with nothing but Python's standard library, as any local account can write one.

It speaks ZMTP 3.0 with the NULL mechanism (no key) as a DEALER, sends one request and prints what came back:
``reply <json>`` or ``silent`` (the server closed the connection or said nothing within the timeout). Tests run it
as another local account (``runuser -u nobody -- /usr/bin/python3 zmtp_null_client.py ...``), so it must not import
anything outside the standard library, nor anything from this repository.

Usage: ``python3 zmtp_null_client.py tcp://127.0.0.1:PORT '{"v": 1, ...}' [TIMEOUT]``
"""

from __future__ import annotations

import socket
import struct
import sys


def _frame(body: bytes, command: bool = False) -> bytes:
    flags = 0x04 if command else 0x00
    if len(body) > 255:
        return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    flags = _read_exactly(sock, 1)[0]
    size = struct.unpack(">Q", _read_exactly(sock, 8))[0] if flags & 0x02 else _read_exactly(sock, 1)[0]
    return flags, _read_exactly(sock, size)


def ask(address: str, request: bytes, timeout: float) -> str:
    """Send ``request`` to the ROUTER at ``address``; ``reply ...`` or ``silent``."""
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
        sock.sendall(greeting)
        try:
            _read_exactly(sock, 64)  # the server's greeting (it names its mechanism: CURVE, where we said NULL)
            ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
            sock.sendall(_frame(ready, command=True))
            sock.sendall(_frame(request))
            while True:
                flags, body = _read_frame(sock)
                if not flags & 0x04:  # a message, not a command
                    return "reply " + body.decode(errors="replace")
        except (ConnectionError, TimeoutError, OSError):
            return "silent"


if __name__ == "__main__":
    print(ask(sys.argv[1], sys.argv[2].encode(), float(sys.argv[3]) if len(sys.argv) > 3 else 3.0), flush=True)
