"""QEMU command lines for the emulated boards (boards/qemu-*.toml, [emulator] table).

The serial port is a TCP listening socket created by the host (fltiny.devices.fleet) and handed
to QEMU as an inherited fd: `-chardev socket,id=s0,fd=N,server=on,wait=on -serial chardev:s0`.
With wait=on the guest starts only when the host connects, so no early byte is lost. The data
blob is loaded at the board's data address by `-device loader,file=...,addr=...,force-raw=on`.
Semihosting (Arm) and the virt test finisher (RISC-V) give the guest's exit code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fltiny.boards import Board
from fltiny.errors import ToolchainError


def qemu_binary(board: Board) -> str:
    name = board.emulator.get("binary", "")
    path = shutil.which(name) if name else None
    if not path:
        raise ToolchainError(f"{name or 'QEMU'} not found; install qemu-system-arm / qemu-system-misc "
                             "(apt-get install --no-install-recommends qemu-system-arm qemu-system-misc)")
    return path


SECRET_BYTES = 32  # FLT_PORT_SECRET_SIZE (firmware/ports/port.h)


def write_boot_secret(path: Path) -> Path:
    """A fresh boot secret for one board launch at ``path`` (firmware/ports/common/
    flt_seeded_secret.h: QEMU models no TRNG, so the launcher draws 32 bytes from os.urandom
    and QEMU's loader puts them below the board's data region). Written again before every
    launch of the board (a reboot gets a new secret, as a TRNG gives); owner-only, in the
    fleet's working folder, removed with it; the bridge never reads it."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(SECRET_BYTES))
    return path


def qemu_command(board: Board, elf: Path, *, serial_fd: int | None, data: Path | None = None,
                 icount: bool = False, secret: Path | None = None) -> list[str]:
    """The QEMU command line for one board. serial_fd None: the serial port goes to stdio.
    ``secret``: a write_boot_secret file, loaded 32 bytes below the data region (the board's
    flt_port_boot_secret)."""
    cmd = [qemu_binary(board), "-M", board.emulator["machine"], "-nographic", "-monitor", "none"]
    if board.port == "qemu-rv32":
        cmd += ["-bios", "none", "-m", "128M"]
    else:
        cmd += ["-semihosting-config", "enable=on,target=native"]
    cmd += ["-kernel", str(elf)]
    if serial_fd is not None:
        cmd += ["-chardev", f"socket,id=s0,fd={serial_fd},server=on,wait=on", "-serial", "chardev:s0"]
    else:
        cmd += ["-serial", "stdio"]
    if data is not None:
        size = Path(data).stat().st_size
        limit = int(board.emulator.get("data_max_bytes", 0))
        if size > limit:
            raise ToolchainError(f"data blob {data} is {size} B; board {board.name} reserves {limit} B "
                                 "for it (use fewer windows)")
        cmd += ["-device", f"loader,file={data},addr={int(board.emulator['data_address']):#x},force-raw=on"]
    if secret is not None:
        addr = int(board.emulator["data_address"]) - SECRET_BYTES
        cmd += ["-device", f"loader,file={secret},addr={addr:#x},force-raw=on"]
    if icount:
        cmd += ["-icount", "shift=0,sleep=off"]
    return cmd
