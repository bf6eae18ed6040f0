"""Secure aggregation's device steps on the emulated boards: tests/c/secagg_target.c (a
firmware/bare program) runs two rounds of five secagg clients (runtime secagg/) on qemu-m4f and
qemu-rv32, unmasks the sum on the board and exits 0 only when it equals the plain sum of the
quantized values; bench/secagg_cost.py measures the same program's steps."""

from __future__ import annotations

import re
import shutil

import pytest

from fltiny.bench.bare import build_bare, run_bare
from fltiny.boards import get_board
from fltiny.native.build import REPO_ROOT
from fltiny.native.cross import TARGETS

pytestmark = pytest.mark.cross

PROGRAM = REPO_ROOT / "tests" / "c" / "secagg_target.c"
BOARDS = {"qemu-m4f": "cortex-m4f", "qemu-rv32": "rv32imc"}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_secagg_rounds_decode_on_target(name, tmp_path):
    board = get_board(name)
    if not shutil.which(board.emulator["binary"]) or not TARGETS[BOARDS[name]].available():
        pytest.fail(f"{board.emulator['binary']} or the {BOARDS[name]} compiler is not installed: "
                    "run make setup", pytrace=False)
    elf = build_bare(board, [PROGRAM], ["proto", "crypto", "secagg"], tmp_path, name="secagg")
    code, out = run_bare(board, elf)
    assert code == 0, out
    m = re.search(r"secagg target: ok ram=(\d+) stack session=\d+", out)
    assert m and 1000 < int(m[1]) < 8192, out  # the client's static RAM, FLT_SECAGG_MAX_COHORT 16
