"""The memory report counts RAM by the board's address regions where the board file names them
(the ESP32 family), so ESP-IDF's placeholder sections are not RAM (issue 13).

The fixtures are real ELF files linked here with the cross compilers, laid out as ESP-IDF 5.5's
ESP32-C3 / ESP32-S3 linker scripts lay out an application: IRAM code, the .dram0.dummy that
reserves IRAM's share of the shared SRAM in DRAM, data and bss in DRAM, code in IROM, and in DROM
the NOLOAD .flash_rodata_dummy as big as .flash.text (the MMU maps both flash windows alike) and
.ext_ram.dummy (the S3's PSRAM window). NOLOAD sections come out allocated, writable and without
contents: the flag rule alone would count them as RAM.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from skip_policy import require_tools

from fltiny.boards import get_board
from fltiny.build.memory import memory_report

pytestmark = pytest.mark.cross

FLASH_TEXT = 48 * 1024  # the code in IROM; .flash_rodata_dummy reserves as much in DROM
EXT_RAM_DUMMY = 96 * 1024

SOURCE = r"""
#include <stdint.h>
#define AT(s) __attribute__((section(s), used))
#define BLOCK(n) { [(n) - 1] = 1 }
AT(".iram0.text.isr") const uint8_t iram_code[1024] = BLOCK(1024);
AT(".flash.text.f") const uint8_t flash_code[%(flash_text)d] = BLOCK(%(flash_text)d);
AT(".flash.rodata.r") const uint8_t flash_const[4096] = BLOCK(4096);
AT(".dram0.data.d") uint8_t dram_data[512] = BLOCK(512);
AT(".dram0.bss.b") uint8_t dram_bss[8192];
void _start(void) {}
"""

LDSCRIPT = """
MEMORY {
  iram0_0_seg (RX) : org = %(iram)#x, len = 0x50000
  dram0_0_seg (RW) : org = %(dram)#x, len = 0x50000
  irom_seg (RX) : org = 0x42000020, len = 0x800000
  drom_seg (R) : org = 0x3C000020, len = 0x800000
}
SECTIONS {
  .iram0.text : { _iram_start = ABSOLUTE(.); KEEP(*(.iram0.text*)) _iram_end = ABSOLUTE(.); } > iram0_0_seg
  .dram0.dummy (NOLOAD) : { . = ORIGIN(dram0_0_seg) + _iram_end - _iram_start; } > dram0_0_seg
  .dram0.data : { KEEP(*(.dram0.data*)) } > dram0_0_seg
  .dram0.bss (NOLOAD) : { KEEP(*(.dram0.bss*)) } > dram0_0_seg
  .flash.text : { KEEP(*(.flash.text*)) *(.text*) } > irom_seg
  .flash_rodata_dummy (NOLOAD) : { . = ALIGN(ALIGNOF(.flash.text)); . = . + SIZEOF(.flash.text); } > drom_seg
  .flash.rodata : { KEEP(*(.flash.rodata*)) } > drom_seg
  .ext_ram.dummy (NOLOAD) : { . = . + %(ext)d; } > drom_seg
  /DISCARD/ : { *(.comment) *(.note*) *(.riscv.attributes) *(.ARM.attributes) }
}
"""

# where IDF 5.5's memory.ld puts the application's IRAM and DRAM (SOC_IRAM_LOW / SOC_DRAM_LOW)
ORIGINS = {"esp32-c3": (0x4037C000, 0x3FC80000), "esp32-s3": (0x40370000, 0x3FC88000)}

COMPILERS = {
    "riscv": ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32"],
    "arm": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"],
}


def link_fixture(tmp_path: Path, arch: str, name: str) -> Path:
    cc = COMPILERS[arch]
    require_tools(cc[0])
    src = tmp_path / "app.c"
    src.write_text(SOURCE % {"flash_text": FLASH_TEXT})
    ld = tmp_path / "app.ld"
    iram, dram = ORIGINS[name]
    ld.write_text(LDSCRIPT % {"ext": EXT_RAM_DUMMY, "iram": iram, "dram": dram})
    elf = tmp_path / f"app-{arch}.elf"
    r = subprocess.run([*cc, "-Os", "-ffreestanding", "-nostdlib", "-nostartfiles", "-T", str(ld),
                        str(src), "-o", str(elf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return elf


def sections(elf: Path) -> dict[str, tuple[str, int, int, int]]:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        return {s.name: (s["sh_type"], int(s["sh_flags"]), int(s["sh_addr"]), int(s["sh_size"]))
                for s in ELFFile(fh).iter_sections() if s.name}


@pytest.mark.parametrize("arch", sorted(COMPILERS))
@pytest.mark.parametrize("name", ["esp32-c3", "esp32-s3"])
def test_placeholders_take_no_ram(tmp_path, arch, name):
    elf = link_fixture(tmp_path, arch, name)
    secs = sections(elf)
    # the fixture is what IDF's scripts produce: allocated, writable, no contents, in DROM
    for dummy, size in ((".flash_rodata_dummy", FLASH_TEXT), (".ext_ram.dummy", EXT_RAM_DUMMY)):
        kind, flags, addr, sz = secs[dummy]
        assert kind == "SHT_NOBITS" and flags & 0x3 == 0x3 and sz >= size
        assert 0x3C000000 <= addr < 0x3E000000
    iram = secs[".iram0.text"][3]
    assert secs[".dram0.dummy"][3] == iram  # IRAM's share of the shared SRAM, reserved in DRAM

    board = get_board(name)
    rep = memory_report(elf, board)
    dram = secs[".dram0.dummy"][3] + secs[".dram0.data"][3] + secs[".dram0.bss"][3]
    assert rep.ram_used == dram  # IRAM counted once (through .dram0.dummy), no DROM placeholder
    assert rep.flash_used == (iram + secs[".dram0.data"][3] + secs[".flash.text"][3]
                              + secs[".flash.rodata"][3])
    assert ".flash_rodata_dummy" not in rep.sections and ".ext_ram.dummy" not in rep.sections
    assert rep.sections[".dram0.data"][1] == "flash+RAM" and rep.sections[".dram0.bss"][1] == "RAM"
    assert "dram_bss" in dict(rep.top_ram) and "flash_code" not in dict(rep.top_ram)

    # without address regions the flag rule counts the writable placeholders: what the report did
    # before, and why a C3/S3 firmware that fits would have been refused
    flags_only = memory_report(elf, replace(board, memory={}))
    assert flags_only.ram_used >= dram + FLASH_TEXT + EXT_RAM_DUMMY - iram


def test_regions_come_from_the_board_files():
    for name, lo in (("esp32", 0x3FFAE000), ("esp32-s3", 0x3FC88000), ("esp32-c3", 0x3FC80000)):
        regions = get_board(name).ram_regions
        assert regions and regions[0][0] == lo
    for name in ("stm32f4", "nrf52840", "rp2040", "qemu-m3"):
        assert get_board(name).ram_regions == ()


def test_bad_regions_are_refused(tmp_path):
    from fltiny.boards import _parse
    from fltiny.errors import UsageError

    text = (Path(get_board("esp32-c3").path).read_text()
            .replace("ram_regions = [[0x3FC80000, 0x3FCE0000]]", "ram_regions = [[0x3FCE0000, 1]]"))
    bad = tmp_path / "esp32-c3.toml"
    bad.write_text(text)
    with pytest.raises(UsageError, match="ram_regions"):
        _parse(bad)
