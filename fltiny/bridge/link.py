"""Byte links to devices for the bridge: a TCP socket (QEMU serial sockets, native boards,
Wi-Fi boards) or pyserial (``/dev/tty*``, ``socket://``, any ``serial_for_url`` URL); MQTT
through a broker is ``fltiny.bridge.mqtt.MqttLink``.

A link has ``send(bytes)``, ``receive() -> bytes`` (what arrived within ~20 ms, ``b""`` when
nothing) and ``close()``; a closed or broken link raises ``ConnectionError`` from both, so the
fleet reconnects. Every byte is counted (``sent`` / ``received``): the bridge reports bytes on
the wire, framing, acknowledgements and retransmissions included.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable


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

    def up(self) -> bool:
        """False when the link knows it cannot carry bytes now (an MQTT device that is
        offline): the fleet reopens it before a round instead of finding out during one."""
        return True

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


class PacedLink(Link):
    """Another link limited to a UART's rate, both directions (``baud`` with 8N1 framing: 10
    bits per byte), for honest timing with emulated boards whose serial port has no rate.

    Sending writes slices of at most ``slice_bytes`` and sleeps until the line would have
    carried them, so the device sees bytes no sooner than a real UART delivers them.
    Receiving hands out what the inner link returned no sooner than the line would have
    carried it (full duplex: each direction has its own line clock). ``clock`` and ``sleep``
    are injectable for tests."""

    def __init__(self, inner: Link, baud: int, *, slice_bytes: int = 16,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        if baud <= 0:
            raise ValueError(f"baud must be positive, got {baud}")
        self.inner = inner
        self.byte_s = 10.0 / baud
        self.slice = max(1, slice_bytes)
        self.clock, self.sleep = clock, sleep
        self._tx_free = 0.0  # when the host->device line is idle again
        self._rx: list[tuple[float, bytes]] = []  # (time its last byte is on the host, bytes)
        self._rx_free = 0.0

    def _send(self, data: bytes) -> None:
        # slices follow each other on the line's schedule: a late wake-up (sleep overshoot)
        # sends the next slice at once instead of shifting every later slice
        now = self.clock()
        if now > self._tx_free + 0.002:  # the line was idle: a new burst starts now
            self._tx_free = now
        for i in range(0, len(data), self.slice):
            part = data[i:i + self.slice]
            self.inner.send(part)
            self._tx_free += len(part) * self.byte_s
            wait = self._tx_free - self.clock()
            if wait > 0:
                self.sleep(wait)

    def _receive(self) -> bytes:
        if not self._rx:  # the line is idle: wait (up to the inner link's ~20 ms) for bytes
            data = self.inner.receive()
            now = self.clock()
            for b in data:  # each byte takes byte_s of line time after the previous one
                self._rx_free = max(now, self._rx_free) + self.byte_s
                self._rx.append((self._rx_free, bytes([b])))
            if not self._rx:
                return b""
        # bytes still on the line: hand out what has arrived by now (sleeping until the first
        # one has); what the device sent meanwhile waits in the inner link's buffer
        wait = self._rx[0][0] - self.clock()
        if wait > 0:
            self.sleep(min(0.02, wait))
        now = self.clock()
        ready = 0
        while ready < len(self._rx) and self._rx[ready][0] <= now:
            ready += 1
        out = b"".join(part for _, part in self._rx[:ready])
        del self._rx[:ready]
        return out

    def close(self) -> None:
        self.inner.close()


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
