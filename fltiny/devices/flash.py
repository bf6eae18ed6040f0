"""Flash real boards: PlatformIO's upload target, or esptool for the ESP32 family.

Without --port the candidate serial ports are listed (pyserial) and nothing is built. ESP32
images come from PlatformIO's build directory: bootloader (at 0x1000 on ESP32, 0x0 on ESP32-S3
and -C3), partition table at 0x8000, application at 0x10000 (templates/project/esp-idf).

Provisioning: each flashed board gets its device id (``--device-id``, default the lowest id
the record does not hold) and its own protocol key (``--key``, default 32 fresh random bytes)
compiled into its firmware (fltiny_config.h). Only after the upload succeeded are they written
to the provisioning record (fltiny.provision: ``build/devices.toml``, mode 0600), where
``fltiny run --port`` / ``--fleet-file`` finds them; a failed flash records nothing.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fltiny.boards import Board
from fltiny.errors import ToolchainError, UsageError

log = logging.getLogger("fltiny.devices")

ESP_CHIPS = {"esp32": ("esp32", 0x1000), "esp32-s3": ("esp32s3", 0x0), "esp32-c3": ("esp32c3", 0x0)}


def candidate_ports() -> list[tuple[str, str]]:
    from serial.tools import list_ports

    return [(p.device, p.description or "") for p in sorted(list_ports.comports(), key=lambda p: p.device)]


def esptool_command(board: Board, port: str, build_dir: Path, baud: int = 460800) -> list[str]:
    chip, boot_addr = ESP_CHIPS[board.name]
    images = [(boot_addr, build_dir / "bootloader.bin"), (0x8000, build_dir / "partitions.bin"),
              (0x10000, build_dir / "firmware.bin")]
    missing = [str(p) for _, p in images if not p.is_file()]
    if missing:
        raise ToolchainError(f"missing ESP32 images {', '.join(missing)}; "
                             f"build with 'fltiny build --board {board.name}'")
    cmd = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port, "--baud", str(baud),
           "write_flash"]
    for addr, path in images:
        cmd += [f"0x{addr:x}", str(path)]
    return cmd


@dataclass(frozen=True)
class Provisioning:
    """What a flash gives the board: its device id and key, and where they are recorded."""

    device_id: int
    key: bytes
    record: Path

    @classmethod
    def resolve(cls, record: Path, device_id: int | None, key: bytes | None) -> Provisioning:
        from fltiny.provision import next_device_id

        return cls(device_id if device_id is not None else next_device_id(record),
                   key if key is not None else secrets.token_bytes(32), Path(record))


def flash_board(board: Board, port: str | None, bundle: Path, out: Path | None,
                progress: Callable[[str], None] = lambda _m: None,
                provision: Provisioning | None = None, ram_budget: int | None = None) -> str:
    """Build (with the board's device id and key), upload, record; returns a one-line summary.
    Lists ports (UsageError) without --port. ``provision`` None: device id 1 and the public
    development key, nothing recorded. ``ram_budget``: as ``fltiny build --ram-budget``."""
    if board.emulated:
        raise UsageError(f"board {board.name} is emulated: start it with "
                         f"'fltiny emulate --board {board.name}'")
    if port is None:
        ports = candidate_ports()
        listing = "; ".join(f"{d} ({desc})" for d, desc in ports) or "none found"
        raise UsageError(f"no --port given; candidate serial ports: {listing}. "
                         f"Run 'fltiny flash --board {board.name} --port PORT'")
    from fltiny.build.firmware import build_firmware
    from fltiny.build.pio import run_pio

    ids = {} if provision is None else {"device_id": provision.device_id, "key": provision.key}
    fw = build_firmware(board, bundle, out, progress=progress, ram_budget=ram_budget, **ids)
    if board.esp:
        cmd = esptool_command(board, port, fw.elf.parent)
        progress(f"esptool: {' '.join(cmd[3:])}")
        log.debug("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise ToolchainError(f"esptool failed on {port}: {tail}")
    else:
        proc = run_pio(["run", "-d", str(fw.project.path), "-e", fw.project.env_name, "-t", "upload",
                        "--upload-port", port], cwd=fw.project.path)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise ToolchainError(f"PlatformIO upload to {port} failed: {tail}")
    done = f"flashed {board.name} on {port} ({fw.report.flash_used} B flash)"
    if provision is None:
        return done
    record_flashed(provision, board, port)
    return (f"{done} as device {provision.device_id}; its id and key are recorded in "
            f"{provision.record}: run it with 'fltiny run --port {port}'")


def record_flashed(provision: Provisioning, board: Board, port: str) -> None:
    """Write the flashed board to the provisioning record (after a successful upload)."""
    from fltiny.provision import PortDevice, record_device

    record_device(provision.record, PortDevice(port, board.name, provision.device_id,
                                               provision.key))
