"""Command line of a native board: the firmware as a Linux process speaking TCP
(firmware/ports/native/port_native.c). The host hands it a listening socket (--listen-fd), its
data as a file (--data: a data blob, or a recording its sensor hook replays) and a checkpoint
file (--state)."""

from __future__ import annotations

from pathlib import Path


def native_command(elf: Path, *, listen_fd: int, data: Path | None = None,
                   state: Path | None = None) -> list[str]:
    cmd = [str(elf), "--listen-fd", str(listen_fd)]
    if data is not None:
        cmd += ["--data", str(data)]
    if state is not None:
        cmd += ["--state", str(state)]
    return cmd
