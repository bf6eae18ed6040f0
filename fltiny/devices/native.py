"""Command line of a native board: the firmware as a Linux process speaking TCP or MQTT
(firmware/ports/native/port_native.c). The host hands it a listening socket (--listen-fd) or
its broker identity (--mqtt ...: fltiny.broker), its data as a file (--data: a data blob, or a
recording its sensor hook replays) and a checkpoint file (--state)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MqttIdentity:
    """What a native board needs to join the fleet's broker (docs/protocol.md "MQTT
    transport"): where it is, the CA that signed it, and the device's own certificate."""

    host: str
    port: int
    client_id: str  # device-N, the certificate's CN
    ca: Path
    cert: Path
    key: Path
    keepalive: int = 30  # seconds; libmosquitto takes 5..65535

    def __post_init__(self) -> None:
        if not 5 <= self.keepalive <= 65535:
            raise ValueError(f"MQTT keepalive {self.keepalive} s: libmosquitto takes 5..65535")

    def args(self) -> list[str]:
        return ["--mqtt", f"{self.host}:{self.port}", "--mqtt-id", self.client_id,
                "--mqtt-ca", str(self.ca), "--mqtt-cert", str(self.cert),
                "--mqtt-key", str(self.key), "--mqtt-keepalive", str(self.keepalive)]


def native_command(elf: Path, *, listen_fd: int | None = None, mqtt: MqttIdentity | None = None,
                   data: Path | None = None, state: Path | None = None) -> list[str]:
    if (listen_fd is None) == (mqtt is None):
        raise ValueError("a native board gets a listening socket or an MQTT identity")
    cmd = [str(elf), *(["--listen-fd", str(listen_fd)] if mqtt is None else mqtt.args())]
    if data is not None:
        cmd += ["--data", str(data)]
    if state is not None:
        cmd += ["--state", str(state)]
    return cmd
