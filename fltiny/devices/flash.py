"""Flash real boards: PlatformIO's upload target, or esptool for the ESP32 family.

Without --port the candidate serial ports are listed (pyserial) and nothing is built. ESP32
images come from PlatformIO's build directory: bootloader (at 0x1000 on ESP32, 0x0 on ESP32-S3
and -C3), partition table at 0x8000, application at 0x10000 (templates/project/esp-idf).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
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


def flash_board(board: Board, port: str | None, bundle: Path, out: Path | None,
                progress: Callable[[str], None] = lambda _m: None) -> str:
    """Build and upload; returns a one-line summary. Lists ports (UsageError) without --port."""
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

    fw = build_firmware(board, bundle, out, progress=progress)
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
    return f"flashed {board.name} on {port} ({fw.report.flash_used} B flash)"
