"""The memory accounting of bench/memory.py agrees with the ELF: fltiny's build report, the
toolchain's `size -A`, and the head's parameter count."""

from __future__ import annotations

import subprocess

import pytest

from fltiny.bench.memory import elf_memory, symbol_bytes
from fltiny.boards import get_board
from fltiny.build.firmware import build_firmware
from fltiny.build.memory import memory_report

pytestmark = [pytest.mark.slow, pytest.mark.cross, pytest.mark.tools("arm-none-eabi-gcc")]


@pytest.fixture(scope="module")
def device_elf(har_tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "fw" / "bench-mem-qemu-m4f"
    return build_firmware(get_board("qemu-m4f"), har_tiny_bundle, out).elf


def test_memory_matches_build_report_and_size(device_elf):
    board = get_board("qemu-m4f")
    mem = elf_memory(device_elf)
    rep = memory_report(device_elf, board)
    assert mem.flash == rep.flash_used
    assert mem.static_ram + mem.stack_reserve == rep.ram_used
    assert mem.stack_reserve == 8192
    out = subprocess.run(["arm-none-eabi-size", "-A", str(device_elf)], capture_output=True,
                         text=True, check=True).stdout
    size = {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines()[2:] if ln.split()
            and ln.split()[0].startswith(".")}
    assert mem.bss == size[".bss"] and mem.data == size.get(".data", 0)
    assert mem.text_rodata == size[".isr_vector"] + size[".text"] + size.get(".ARM.exidx", 0)
    assert 0 < mem.code and 0 < mem.const and mem.code + mem.const <= mem.text_rodata


def test_head_state_symbols_match_head(device_elf, har_tiny_bundle):
    from fltiny.export.bundle import read_bundle

    _m, head, _b = read_bundle(har_tiny_bundle)
    p = head.n_params
    syms = symbol_bytes(device_elf, ("global_params", "ws_params", "personal", "residual",
                                     "shared"))
    assert {k: v for k, v in syms.items() if k != "shared"} == {
        "global_params": 4 * p, "ws_params": 4 * p, "personal": 4 * p, "residual": 4 * p}
    # the round's buffers (momentum, features, order, training workspace) share one region
    # with the link's message buffer, which holds a FULL GLOBAL (4 P bytes + its header)
    assert syms["shared"] >= 4 * p + 4 * p
    rep = memory_report(device_elf, get_board("qemu-m4f"))
    assert sum(b for _n, b in rep.parts) == rep.ram_used
