"""Topic names and client identities of the MQTT transport (docs/protocol.md "MQTT transport").

Device ``N`` is the MQTT user ``device-N`` (its certificate's common name: the broker takes the
identity from the certificate, ``use_identity_as_username``) and uses three topics under
``fltiny/device-N/``: ``up`` (device -> host frames), ``down`` (host -> device frames) and
``status`` (``online`` / ``offline``, retained; the offline one is the device's will). The host
is the user ``fltiny-host``.
"""

from __future__ import annotations

import re

PREFIX = "fltiny"
HOST_USER = "fltiny-host"
ONLINE, OFFLINE = b"online", b"offline"
QOS = 1  # at least once between each client and the broker; the protocol drops duplicates

_DEVICE = re.compile(r"device-([1-9][0-9]{0,9})")


def device_user(device_id: int) -> str:
    if not 1 <= device_id <= 0xFFFF_FFFF:
        raise ValueError(f"device id {device_id} out of range 1..2^32-1")
    return f"device-{device_id}"


def up_topic(device_id: int) -> str:
    return f"{PREFIX}/{device_user(device_id)}/up"


def down_topic(device_id: int) -> str:
    return f"{PREFIX}/{device_user(device_id)}/down"


def status_topic(device_id: int) -> str:
    return f"{PREFIX}/{device_user(device_id)}/status"


def parse_topic(topic: str) -> tuple[int, str] | None:
    """``fltiny/device-N/<kind>`` -> (N, kind); None for any other topic."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    m = _DEVICE.fullmatch(parts[1])
    if m is None or int(m.group(1)) > 0xFFFF_FFFF:
        return None
    return int(m.group(1)), parts[2]
