"""Byte links to devices for the bridge: a TCP socket (QEMU serial sockets, native boards,
Wi-Fi boards) or pyserial (``/dev/tty*``, ``socket://``, any ``serial_for_url`` URL).

A link has ``send(bytes)``, ``receive() -> bytes`` (what arrived within ~20 ms, ``b""`` when
nothing) and ``close()``; a closed or broken link raises ``ConnectionError`` from both, so the
fleet reconnects. Every byte is counted (``sent`` / ``received``): the bridge reports bytes on
the wire, framing, acknowledgements and retransmissions included.
"""

from __future__ import annotations

import select
import socket


class Link:
    def __init__(self) -> None:
        self.sent = 0
        self.received = 0

    def send(self, data: bytes) -> None:
        self._send(data)
        self.sent += len(data)

    def receive(self) -> bytes:
        data = self._receive()
        self.received += len(data)
        return data

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def _receive(self) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SocketLink(Link):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ConnectionError(f"send failed: {exc}") from None

    def _receive(self) -> bytes:
        try:
            ready, _, _ = select.select([self.sock], [], [], 0.02)
            if not ready:
                return b""
            data = self.sock.recv(4096)
        except (OSError, ValueError) as exc:
            raise ConnectionError(f"receive failed: {exc}") from None
        if not data:
            raise ConnectionError("the device closed the connection")
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SerialLink(Link):
    def __init__(self, url: str, baudrate: int = 115200) -> None:
        super().__init__()
        import serial

        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.02)
        except (serial.SerialException, ValueError) as exc:
            raise ConnectionError(f"cannot open {url}: {exc}") from None

    def _send(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise ConnectionError(f"write failed: {exc}") from None

    def _receive(self) -> bytes:
        import serial

        try:
            return self.port.read(max(1, self.port.in_waiting))
        except (serial.SerialException, OSError) as exc:
            raise ConnectionError(f"read failed: {exc}") from None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a broken port must not mask the real error
            pass


def open_link(url: str, timeout: float = 5.0) -> Link:
    """``tcp://host:port`` or ``host:port`` -> SocketLink; ``socket://...``, ``/dev/...``,
    ``COMn``, ``rfc2217://...`` -> SerialLink."""
    if url.startswith("tcp://") or (":" in url and "://" not in url and not url.startswith("/")):
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        try:
            sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as exc:
            raise ConnectionError(f"cannot connect to {url}: {exc}") from None
        return SocketLink(sock)
    return SerialLink(url)
