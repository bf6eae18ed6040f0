"""The bridge's MQTT transport (paho-mqtt): one TLS client for the host, one ``Link`` per device.

``MqttHub`` is the host's connection to the broker (user ``fltiny-host``, its client
certificate, the fleet's CA, TLS 1.2 or newer, the broker's name checked against its
certificate). It subscribes to every device's up- and status-topic (QoS 1) and keeps, per
device, the frames that arrived and whether the device is online (its retained status, the will
``offline`` when its connection dies). MQTT 5 with a clean start on the first connection only
(frames queued for an earlier run would be replays) and a session that outlives a reconnect by
``session_expiry`` seconds; paho reconnects on its own after a lost connection.

``MqttLink`` carries one device's frames with the ``Link`` interface the sessions use, so
sessions, replay verification, churn and resume run unchanged (docs/protocol.md "MQTT
transport"): ``send`` cuts the session's wire bytes at each 0x00 and publishes what came before
(COBS, without the delimiter) as one message on the device's down-topic; ``receive`` hands out
the messages that arrived on its up-topic, each followed by 0x00. A link whose hub lost the
broker, or whose device went offline, raises ``ConnectionError`` (the bridge reopens it:
``MqttHub.open`` waits for the broker and the device to be back).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fltiny.bridge.link import Link
from fltiny.broker import topics
from fltiny.errors import UsageError

DEFAULT_PORT = 8883


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and who the host is."""

    host: str
    port: int
    ca: Path
    cert: Path
    key: Path
    keepalive: int = 30
    session_expiry: int = 300  # seconds the broker keeps the host's session after a drop
    client_id: str = topics.HOST_USER

    @property
    def url(self) -> str:
        return f"mqtts://{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``mqtts://host[:port]`` -> (host, port); UsageError for anything else (plain ``mqtt://``
    included: fltiny talks to brokers over TLS only)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed or empty [IPv6] host
        parts, hostname = None, None
    if parts is not None and parts.scheme == "mqtt":
        raise UsageError(f"--mqtt-url {url}: fltiny connects to brokers over TLS only; use "
                         "mqtts://HOST:PORT (the broker's TLS listener)")
    try:
        port = parts.port if parts is not None else -1
    except ValueError:
        port = -1
    if parts is None or parts.scheme not in ("mqtts", "ssl") or not hostname or port == -1 or (
            parts.path not in ("", "/")):
        raise UsageError(f"--mqtt-url {url}: expected mqtts://HOST:PORT, e.g. "
                         "mqtts://127.0.0.1:8883")
    return hostname, port or DEFAULT_PORT


def stop_network_loop(client) -> None:
    """Stop a paho client's network thread. paho's ``loop_stop`` races with that thread: when
    the thread ends on its own (the broker closed the connection) between loop_stop's check and
    its join, loop_stop raises AttributeError. The thread is over either way."""
    try:
        client.loop_stop()
    except AttributeError:
        pass


def _check_files(s: MqttSettings) -> None:
    for what, path in (("CA certificate", s.ca), ("host certificate", s.cert),
                       ("host key", s.key)):
        if not Path(path).is_file():
            raise UsageError(f"the {what} {path} does not exist: 'fltiny broker start --dir "
                             "DIR' makes a fleet's certificates (DIR/pki), or give your own")


class MqttHub:
    """The host's broker connection (module docstring). ``start`` raises UsageError, one
    line, when the broker cannot be reached or refuses the host."""

    def __init__(self, settings: MqttSettings, *, connect_timeout: float = 5.0) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self._lock = threading.Condition()
        self._frames: dict[int, deque[bytes]] = {}
        self._online: dict[int, bool] = {}
        self.connected = False
        self.generation = 0  # counts connections: a link opened before a drop is stale
        self.refusal = ""
        self.disconnects = 0
        self._client = None

    # ---- paho callbacks (paho's network thread) -------------------------------------------
    def _on_connect(self, client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            with self._lock:
                self.refusal = str(reason_code)
                self._lock.notify_all()
            return
        client.subscribe([(f"{topics.PREFIX}/+/up", topics.QOS),
                          (f"{topics.PREFIX}/+/status", topics.QOS)])

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _props) -> None:
        with self._lock:
            if any(rc.is_failure for rc in reason_codes):
                self.refusal = "the broker refused the host's subscriptions (its ACL)"
            else:
                self.connected = True
                self.generation += 1
            self._lock.notify_all()

    def _on_disconnect(self, _client, _userdata, _flags, _reason_code, _props) -> None:
        with self._lock:
            if self.connected:
                self.disconnects += 1
            self.connected = False
            self._lock.notify_all()

    def _on_message(self, _client, _userdata, msg) -> None:
        parsed = topics.parse_topic(msg.topic)
        if parsed is None:
            return
        device_id, kind = parsed
        with self._lock:
            if kind == "up" and msg.payload:
                self._frames.setdefault(device_id, deque()).append(bytes(msg.payload))
            elif kind == "status":
                self._online[device_id] = bytes(msg.payload) == topics.ONLINE
            self._lock.notify_all()

    # ---- life cycle ----------------------------------------------------------------------
    def start(self) -> MqttHub:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        s = self.settings
        _check_files(s)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=s.client_id,
                             protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(s.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(str(s.cert), str(s.key))
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"the host certificate {s.cert} / key {s.key} do not load "
                             f"({exc}): remake them with 'fltiny broker start'") from None
        client.tls_set_context(ctx)
        client.on_connect, client.on_subscribe = self._on_connect, self._on_subscribe
        client.on_disconnect, client.on_message = self._on_disconnect, self._on_message
        client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry
        try:
            client.connect(s.host, s.port, keepalive=s.keepalive,
                           clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        except ssl.SSLError as exc:
            raise UsageError(f"TLS with the MQTT broker at {s.url} failed ({exc.reason or exc}): "
                             f"does {s.ca} hold the CA that signed the broker's certificate?") \
                from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot reach the MQTT broker at {s.url} ({exc}): is it running "
                             "('fltiny broker start', or your broker's TLS listener), and is the "
                             "URL right?") from None
        self._client = client
        client.loop_start()
        end = time.monotonic() + self.connect_timeout
        with self._lock:
            while not self.connected and not self.refusal and time.monotonic() < end:
                self._lock.wait(0.05)
            connected, refusal = self.connected, self.refusal
        if not connected:
            self.close()
            why = refusal or f"no answer within {self.connect_timeout:g} s (a broker that " \
                "closes the connection after TLS did not accept the host's certificate)"
            raise UsageError(f"the MQTT broker at {s.url} did not accept the host: {why}; check "
                             f"that {s.cert} is signed by the broker's CA and that its ACL lets "
                             f"{topics.HOST_USER} read fltiny/+/up")
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            stop_network_loop(self._client)
            self._client = None

    # ---- per device ----------------------------------------------------------------------
    def online(self, device_id: int) -> bool:
        with self._lock:
            return self.connected and self._online.get(device_id, False)

    def wait_online(self, device_id: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._lock:
            while not (self.connected and self._online.get(device_id, False)):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
            return True

    def wait_offline(self, device_id: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._lock:
            while self._online.get(device_id, False):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
            return True

    def open(self, device_id: int, timeout: float = 2.0) -> MqttLink:
        """The link to ``device_id`` once the hub is connected and the device online;
        ConnectionError after ``timeout`` seconds."""
        if not self.wait_online(device_id, timeout):
            state = "the host is not connected to the broker" if not self.connected else (
                f"device {device_id} is not online on the broker")
            raise ConnectionError(f"{state} ({self.settings.url})")
        return MqttLink(self, device_id)

    def publish(self, device_id: int, payload: bytes) -> None:
        client = self._client
        if client is None or not self.connected:
            raise ConnectionError("the host is not connected to the broker")
        info = client.publish(topics.down_topic(device_id), payload, qos=topics.QOS)
        if info.rc != 0:
            raise ConnectionError(f"publish failed (paho code {info.rc})")

    def take(self, device_id: int, wait: float) -> list[bytes]:
        """Frames that arrived from ``device_id`` (waiting up to ``wait`` s for the first)."""
        end = time.monotonic() + wait
        with self._lock:
            q = self._frames.setdefault(device_id, deque())
            while not q:
                left = end - time.monotonic()
                if left <= 0:
                    return []
                self._lock.wait(left)
            out = list(q)
            q.clear()
            return out


class MqttLink(Link):
    """One device's frames over the hub (module docstring)."""

    def __init__(self, hub: MqttHub, device_id: int) -> None:
        super().__init__()
        self.hub, self.device_id = hub, device_id
        self.generation = hub.generation
        self._pending = b""  # bytes after the last 0x00 the session wrote
        self.closed = False

    def up(self) -> bool:
        return (not self.closed and self.hub.generation == self.generation
                and self.hub.online(self.device_id))

    def _check(self) -> None:
        if self.closed:
            raise ConnectionError("link closed")
        if self.hub.generation != self.generation or not self.hub.connected:
            raise ConnectionError("the connection to the broker was lost")
        if not self.hub.online(self.device_id):
            raise ConnectionError(f"device {self.device_id} went offline")

    def _send(self, data: bytes) -> None:
        self._check()
        *frames, self._pending = (self._pending + data).split(b"\x00")
        for frame in frames:
            if frame:
                self.hub.publish(self.device_id, frame)

    def _receive(self) -> bytes:
        self._check()
        return b"".join(f + b"\x00" for f in self.hub.take(self.device_id, 0.02))

    def close(self) -> None:
        self.closed = True
