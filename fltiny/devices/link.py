"""A protocol session (fltiny.bridge.session.Session) over a connected device socket."""

from __future__ import annotations

import select
import socket


def socket_session(sock: socket.socket, key: bytes, device_id: int, **kw):
    """Session whose send/receive use `sock` (receive never blocks longer than 20 ms)."""
    from fltiny.bridge.session import Session

    def receive() -> bytes:
        ready, _, _ = select.select([sock], [], [], 0.02)
        if not ready:
            return b""
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the device closed the connection")
        return data

    return Session(key=key, device_id=device_id, send=sock.sendall, receive=receive, **kw)
