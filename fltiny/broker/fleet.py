"""A fleet's broker for one run: the mosquitto this process starts (or one already running, or
the user's own at ``--mqtt-url``), the certificates of its devices and the host's connection.

    with FleetBroker(fleet_dir, say=print) as fb:       # broker up, host connected
        ident = fb.identity(device_id)                   # what a native board is started with
        link = fb.hub.open(device_id)                    # the bridge's link to it

Leaving the block closes the host's connection and stops a broker this object started (a
broker ``fltiny broker start`` left running, or the user's, is left alone).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fltiny.bridge.mqtt import MqttHub, MqttSettings, parse_mqtt_url
from fltiny.broker.mosquitto import Broker, running_broker
from fltiny.broker.pki import Pki, ensure_pki, issue_device
from fltiny.broker.topics import device_user
from fltiny.devices.native import MqttIdentity


class FleetBroker:
    def __init__(self, fleet_dir: Path, *, url: str = "", keepalive: int = 30,
                 say: Callable[[str], None] = lambda _m: None) -> None:
        self.fleet_dir = Path(fleet_dir).resolve()
        self.url = url
        self.keepalive = keepalive
        self.say = say
        self.broker: Broker | None = None
        self.started = False
        self.hub: MqttHub | None = None
        self.host, self.port = "127.0.0.1", 0

    @property
    def pki(self) -> Pki:
        return Pki(self.fleet_dir / "pki")

    def __enter__(self) -> FleetBroker:
        try:
            if self.url:
                self.host, self.port = parse_mqtt_url(self.url)
                ensure_pki(self.fleet_dir, hosts=[self.host])
                self.say(f"MQTT broker {self.url} (yours), certificates in {self.pki.root}")
            else:
                self.broker = running_broker(self.fleet_dir)
                if self.broker is None:
                    self.broker = Broker(self.fleet_dir).start()
                    self.started = True
                    self.say(f"started mosquitto on {self.broker.url} (fleet directory "
                             f"{self.fleet_dir})")
                else:
                    self.say(f"using the broker running on {self.broker.url} ({self.fleet_dir})")
                self.host, self.port = self.broker.host, self.broker.port
            pki = self.pki
            self.hub = MqttHub(MqttSettings(self.host, self.port, pki.ca, pki.host.cert,
                                            pki.host.key, keepalive=self.keepalive)).start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.hub is not None:
            self.hub.close()
            self.hub = None
        if self.started and self.broker is not None:
            self.broker.stop()
            self.started = False

    def identity(self, device_id: int) -> MqttIdentity:
        """Device ``device_id``'s broker identity (its certificate issued when missing)."""
        ident = issue_device(self.pki, device_id)
        return MqttIdentity(self.host, self.port, device_user(device_id), self.pki.ca,
                            ident.cert, ident.key, keepalive=self.keepalive)
