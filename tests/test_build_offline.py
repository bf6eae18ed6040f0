"""`fltiny build` for the emulated boards: offline `pio run` through the local platforms, the
memory report, and the failure of a firmware that does not fit its board."""

from __future__ import annotations

import dataclasses
import re

import pytest

from fltiny.boards import get_board
from fltiny.build.firmware import build_firmware
from fltiny.build.memory import memory_report
from fltiny.errors import ToolchainError

pytestmark = [pytest.mark.slow, pytest.mark.cross]

needs_cross = pytest.mark.tools("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc")


@needs_cross
@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m4f", "qemu-rv32", "native"])
def test_build_offline(cli, har_tiny_bundle, tmp_path_factory, board):
    out = tmp_path_factory.getbasetemp() / "fw" / board
    code, stdout, stderr = cli("build", "--board", board, "--bundle", har_tiny_bundle, "--out", out)
    assert code == 0, stderr
    assert f"built {board}" in stdout
    # the estimate (tests/test_energy.py checks its figures): emulated boards have no datasheet
    assert ('energy per round (estimate, a lower bound' in stdout
            and ("no datasheet, an emulated board" in stdout or "not available" in stdout))
    flash = re.search(r"flash\s+(\d+) B of", stdout)
    ram = re.search(r"RAM\s+(\d+) B of", stdout)
    assert flash and ram and int(flash.group(1)) > 1000 and int(ram.group(1)) > 1000
    b = get_board(board)
    elf = out / ".pio" / "build" / b.name.replace("-", "_") / "firmware.elf"
    report = memory_report(elf, b)
    assert report.ok and report.flash_used == int(flash.group(1))
    # a self-contained PlatformIO project: sources copied, platformio.ini names the board
    ini = (out / "platformio.ini").read_text()
    assert f"board = {b.pio_board}" in ini
    assert (out / "src" / "runtime" / "train" / "flt_train_loop.c").is_file()
    assert (out / "src" / "app" / "flt_round.c").is_file()
    if b.qemu:
        ld = (out / f"{board}.ld").read_text()
        assert f"LENGTH = {b.ram_bytes}" in ld and f"LENGTH = {b.flash_bytes}" in ld


@needs_cross
def test_too_big_for_ram_fails_with_report(har_tiny_bundle, tmp_path_factory):
    """A board whose RAM cannot hold the training buffers: the build fails, names the budget
    and the biggest RAM symbols."""
    small = dataclasses.replace(get_board("qemu-m3"), ram_bytes=16 * 1024)
    out = tmp_path_factory.getbasetemp() / "fw" / "qemu-m3-16k"
    with pytest.raises(ToolchainError) as exc:
        build_firmware(small, har_tiny_bundle, out)
    msg = str(exc.value)
    assert "RAM" in msg and "exceeds the 16 kB budget of board 'qemu-m3'" in msg
    assert "shared" in msg  # among the biggest: the round's buffers (training workspace)
    assert "flash" in msg.split(":")[0]  # the report itself leads the message


@needs_cross
def test_too_big_via_cli_exit_code(cli, har_tiny_bundle, tmp_path_factory, monkeypatch):
    import fltiny.boards as boards

    real = boards.get_board

    def tiny(name):
        b = real(name)
        return dataclasses.replace(b, flash_bytes=8 * 1024) if name == "qemu-m4f" else b

    monkeypatch.setattr(boards, "get_board", tiny)
    out = tmp_path_factory.getbasetemp() / "fw" / "qemu-m4f-8k"
    code, _, err = cli("build", "--board", "qemu-m4f", "--bundle", har_tiny_bundle, "--out", out)
    assert code == 6
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "exceeds the 8 kB budget" in errors[0] and "biggest:" in errors[0]
