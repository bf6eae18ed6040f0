"""Boards the host drives but does not start: the fleet file and the provisioning record.

A fleet file (TOML) lists boards that are already running (flashed boards on serial ports,
``fltiny emulate --pty`` boards, Wi-Fi boards on TCP), one ``[[device]]`` table each::

    [[device]]
    port = "/dev/ttyUSB0"     # a serial port, or any link URL (tcp://host:port, socket://...)
    board = "esp32"           # optional: else the board's HELLO names it
    device_id = 3             # optional: else the board's HELLO says it
    key = "<64 hex digits>"   # optional: else the provisioning record's, else the development key

``fltiny flash`` writes the same format, one entry per flashed board (keyed by device id), to
the provisioning record (``build/devices.toml`` or ``$FLTINY_BUILD_DIR/devices.toml``, mode
0600: it holds the boards' keys). ``fltiny run --fleet-file F`` drives the boards F lists;
``fltiny run --port P`` takes the device ids and keys of the record. A board's device id is
also in every frame it sends: the host learns it from the board's first HELLO, authenticated
with one of the keys it knows (fltiny.bridge.ports).

Light on purpose (tomllib and dataclasses): the CLI imports it at start-up. Every problem of a
file is one UsageError naming the file, the entry and the field.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fltiny.errors import UsageError

KEY_BYTES = 32
FIELDS = ("port", "board", "device_id", "key")
DEVICE_ID_MAX = 0xFFFF_FFFF
RECORD_NAME = "devices.toml"


@dataclass(frozen=True)
class PortDevice:
    """One board the host reaches through ``port``; None: learned from its HELLO (board,
    device id) or from the provisioning record (key)."""

    port: str
    board: str | None = None
    device_id: int | None = None
    key: bytes | None = None

    def __repr__(self) -> str:  # never print a key
        return (f"PortDevice(port={self.port!r}, board={self.board!r}, "
                f"device_id={self.device_id!r}, key={'<set>' if self.key else None})")


def record_path(build_root: Path) -> Path:
    """Where ``fltiny flash`` records the boards it provisioned."""
    return Path(build_root) / RECORD_NAME


def parse_key(text: str, where: str) -> bytes:
    """32 bytes from 64 hex digits (UsageError naming ``where`` otherwise)."""
    try:
        key = bytes.fromhex(text)
    except (ValueError, TypeError):
        key = b""
    if len(key) != KEY_BYTES:
        raise UsageError(f"{where}: the key must be {2 * KEY_BYTES} hex digits")
    return key


def _entry(item: object, where: str) -> PortDevice:
    if not isinstance(item, dict):
        raise UsageError(f"{where} is not a table; write [[device]] with port = \"...\"")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise UsageError(f"{where}: unknown field '{unknown[0]}' (fields: {', '.join(FIELDS)})")
    port = item.get("port")
    if not isinstance(port, str) or not port.strip():
        raise UsageError(f"{where} has no port; e.g. port = \"/dev/ttyUSB0\"")
    board = item.get("board")
    if board is not None and (not isinstance(board, str) or not board):
        raise UsageError(f"{where}: board must be a board name (see 'fltiny boards')")
    dev = item.get("device_id")
    if dev is not None and (isinstance(dev, bool) or not isinstance(dev, int)
                            or not 1 <= dev <= DEVICE_ID_MAX):
        raise UsageError(f"{where}: device_id must be an integer from 1 to {DEVICE_ID_MAX}")
    key = item.get("key")
    if key is not None:
        key = parse_key(key, where) if isinstance(key, str) else parse_key("", where)
    return PortDevice(port.strip(), board, dev, key)


def read_fleet_file(path: Path, *, missing_ok: bool = False,
                    unique_ports: bool = True) -> list[PortDevice]:
    """The devices a fleet file (or the provisioning record) lists, checked: every entry has a
    port, no device id (and, with ``unique_ports``, no port) appears twice. ``missing_ok``: a
    missing file lists none. The record may name one port several times (boards flashed one
    after another on the same cable)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise UsageError(f"fleet file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"fleet file {path} cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"fleet file {path} is not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"device"})
    if extra:
        raise UsageError(f"fleet file {path}: unknown table or key '{extra[0]}'; list the boards "
                         "as [[device]] tables")
    items = data.get("device", [])
    if not isinstance(items, list) or (not items and not missing_ok):
        raise UsageError(f"fleet file {path} lists no device; add [[device]] tables with "
                         "port = \"...\"")
    devices = [_entry(it, f"fleet file {path}, device {i + 1}") for i, it in enumerate(items)]
    check_unique(devices, f"fleet file {path}", unique_ports)
    return devices


def check_unique(devices: Sequence[PortDevice], where: str, unique_ports: bool = True) -> None:
    ports: dict[str, int] = {}
    ids: dict[int, int] = {}
    for i, d in enumerate(devices, 1):
        if unique_ports and d.port in ports:
            raise UsageError(f"{where}: port {d.port} appears twice (devices {ports[d.port]} and "
                             f"{i})")
        ports[d.port] = i
        if d.device_id is not None:
            if d.device_id in ids:
                raise UsageError(f"{where}: device id {d.device_id} appears twice (devices "
                                 f"{ids[d.device_id]} and {i})")
            ids[d.device_id] = i


def _toml_string(s: str) -> str:
    # a JSON string is a TOML basic string, except that TOML also escapes DEL
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_fleet_file(devices: Sequence[PortDevice], header: str = "") -> str:
    """The TOML text of a fleet file (the inverse of ``read_fleet_file``)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for d in devices:
        lines += ["", "[[device]]", f"port = {_toml_string(d.port)}"]
        if d.board is not None:
            lines.append(f"board = {_toml_string(d.board)}")
        if d.device_id is not None:
            lines.append(f"device_id = {d.device_id}")
        if d.key is not None:
            lines.append(f"key = \"{d.key.hex()}\"")
    return "\n".join(lines).lstrip("\n") + "\n"


def write_fleet_file(path: Path, devices: Sequence[PortDevice], header: str = "",
                     unique_ports: bool = True) -> None:
    """Write atomically (temporary file + rename); mode 0600 when any entry holds a key."""
    path = Path(path)
    check_unique(devices, f"fleet file {path}", unique_ports)
    text = render_fleet_file(devices, header)
    secret = any(d.key is not None for d in devices)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


RECORD_HEADER = """fltiny provisioning record: the boards 'fltiny flash' provisioned (device id, key,
board, the port it was flashed on). It holds the boards' protocol keys: keep it private.
'fltiny run --port PORT' takes ids and keys from here; 'fltiny run --fleet-file' reads it too."""


def record_device(path: Path, device: PortDevice) -> None:
    """Add or replace (by device id) one provisioned board in the record at ``path``."""
    if device.device_id is None or device.key is None:
        raise UsageError("a provisioned board needs its device id and key")
    old = read_fleet_file(path, missing_ok=True, unique_ports=False)
    kept = [d for d in old if d.device_id != device.device_id]
    write_fleet_file(path, sorted([*kept, device], key=lambda d: d.device_id or 0),
                     RECORD_HEADER, unique_ports=False)


def next_device_id(path: Path) -> int:
    """The lowest device id the record at ``path`` does not hold yet."""
    used = {d.device_id for d in read_fleet_file(path, missing_ok=True, unique_ports=False)}
    i = 1
    while i in used:
        i += 1
    return i
