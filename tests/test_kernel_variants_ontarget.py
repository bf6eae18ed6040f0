"""Each target kernel variant against the reference kernel, on its own board: the bare program
tests/c/kernel_variants_target.c links the board's variant (firmware/runtime/kernels/<target>/,
chosen by fltiny.build.project.kernel_variant as the firmware build does) and the reference
under another name (tests/c/kernel_ref_conv.c), runs both on the zoo's conv shapes and on
hundreds of seeded random shapes (groups, odd channel counts, strides, dilations, padding,
extreme offsets, saturating outputs) and exits 0 only when every output byte matches:
qemu-m4f checks the ARMv7E-M variant, qemu-rv32 the RV32 one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fltiny.bench.bare import build_bare, run_bare
from fltiny.boards import get_board
from fltiny.build.project import kernel_variant
from fltiny.native.build import REPO_ROOT
from fltiny.native.cross import TARGETS

pytestmark = pytest.mark.cross

PROGRAM = [REPO_ROOT / "tests" / "c" / "kernel_variants_target.c",
           REPO_ROOT / "tests" / "c" / "kernel_ref_conv.c"]
BOARDS = {"qemu-m4f": "armv7em", "qemu-rv32": "rv32"}
OK = re.compile(r"kernel variants: ok conv cases=(\d+) outputs=(\d+) saturated=(\d+) "
                r"empty_taps=(\d+)")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_variant_matches_reference_on_target(name: str, tmp_path: Path) -> None:
    board = get_board(name)
    variant = kernel_variant(board)
    assert variant == BOARDS[name]
    if not shutil.which(board.emulator["binary"]) or not TARGETS[board.arch].available():
        pytest.fail(f"{board.emulator['binary']} or the {board.arch} compiler is not installed: "
                    "run make setup", pytrace=False)
    elf = build_bare(board, PROGRAM, ["kernels"], tmp_path, name="kernel_variants",
                     kernel_variant=variant)
    code, out = run_bare(board, elf)
    assert code == 0, out
    m = OK.search(out)
    assert m, out
    cases, outputs, saturated, empty = map(int, m.groups())
    assert cases >= 600 and outputs > 10_000
    assert 0 < saturated < outputs, out  # both saturated and in-range outputs compared
    assert empty > 0, out
