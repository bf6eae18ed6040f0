"""The crypto of firmware/runtime/crypto on the emulated boards: tests/c/crypto_target.c (a
firmware/bare program) checks the RFC 7748 / 8439 / 5869 vectors on qemu-m4f and qemu-rv32 and
exits 0 only when every one holds; the instruction-count plugin measures one call of each."""

from __future__ import annotations

import re
import shutil

import pytest

from fltiny.bench.bare import bench_bare, build_bare, run_bare
from fltiny.boards import get_board
from fltiny.native.build import REPO_ROOT
from fltiny.native.cross import TARGETS

pytestmark = pytest.mark.cross

PROGRAM = REPO_ROOT / "tests" / "c" / "crypto_target.c"
BOARDS = {"qemu-m4f": "cortex-m4f", "qemu-rv32": "rv32imc"}


def _elf(name, tmp_path):
    board = get_board(name)
    if not shutil.which(board.emulator["binary"]) or not TARGETS[BOARDS[name]].available():
        pytest.fail(f"{board.emulator['binary']} or the {BOARDS[name]} compiler is not installed: "
                    "run make setup", pytrace=False)
    return board, build_bare(board, [PROGRAM], ["proto", "crypto"], tmp_path, name="crypto")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_rfc_vectors_hold_on_target(name, tmp_path):
    board, elf = _elf(name, tmp_path)
    code, out = run_bare(board, elf)
    assert code == 0, out
    assert re.search(r"crypto target: ok stack x25519=\d+", out)


def test_measured_intervals_are_deterministic(tmp_path):
    board, elf = _elf("qemu-m4f", tmp_path)
    runs = [bench_bare(board, elf)[2] for _ in range(2)]
    assert runs[0] == runs[1]
    assert set(runs[0]) == {1, 2, 3, 4, 5}
    assert 1_000_000 < runs[0][1] < 50_000_000  # one X25519: millions, not billions
    assert 1_000 < runs[0][2] < 20_000          # one ChaCha20 block
