"""Helpers of the MQTT tests: paho clients with a given identity (or none) against a broker."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import warnings
from pathlib import Path

import paho.mqtt.client as mqtt

from fltiny.bridge.mqtt import stop_network_loop


class Client:
    """A paho MQTT 5 client that records what happens to it (for assertions)."""

    def __init__(self, host: str, port: int, ca: Path | None, cert: Path | None = None,
                 key: Path | None = None, *, client_id: str = "", tls: bool = True,
                 max_tls: ssl.TLSVersion | None = None) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        if tls:
            ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
            if max_tls is not None:  # an old client: offers nothing newer than max_tls
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1
                    ctx.maximum_version = max_tls
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            if cert is not None:
                ctx.load_cert_chain(str(cert), str(key))
            self.c.tls_set_context(ctx)
        self.host, self.port = host, port
        self.connack = threading.Event()
        self.accepted = False
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, str] = {}
        self.subacks: dict[int, list[str]] = {}
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.c.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, str(rc))
        self.c.on_subscribe = lambda _c, _u, mid, rcs, _p: self.subacks.__setitem__(
            mid, [str(r) for r in rcs])

    def _on_connect(self, _c, _u, _f, rc, _p) -> None:
        self.accepted = not rc.is_failure
        self.connack.set()

    def connect(self, timeout: float = 3.0) -> bool:
        """True when the broker accepted the session (CONNACK success) within ``timeout``."""
        try:
            self.c.connect(self.host, self.port, keepalive=10)
        except (OSError, ssl.SSLError, ValueError):
            return False
        self.c.loop_start()
        self.connack.wait(timeout)
        return self.accepted

    def publish(self, topic: str, payload: bytes) -> int:
        return self.c.publish(topic, payload, qos=1).mid

    def subscribe(self, topic: str) -> int:
        return self.c.subscribe(topic, qos=1)[1]

    def wait(self, cond, timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self.c.disconnect()
        stop_network_loop(self.c)


class CuttableProxy:
    """A TCP relay in front of the broker whose connections the test can cut (a network drop:
    both ends see the connection close) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                conn.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # the other direction was cut: this one ends too
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
            s.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
            s.close()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
