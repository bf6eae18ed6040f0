"""Secure aggregation's protocol steps on the emulated boards: instructions, stack, RAM, flash.

    .venv/bin/python bench/secagg_cost.py [--boards qemu-m4f qemu-rv32]

Builds tests/c/secagg_target.c as a bare program (fltiny.bench.bare: firmware/bare shell, the
runtime's proto + crypto + secagg components, -Os, the strict flags) for each board and runs it
under QEMU with `-icount shift=0,sleep=off` and the instruction-count plugin, as
bench/crypto_cost.py does. Five clients of one session on the board (device 0 measured, its four
peers simulated unmeasured), two rounds. Measured: the session's first BEGIN and COHORT in one
interval (channel and mask key pairs; channel and mask secrets with 4 peers; with the COHORT's
encoding), then one later round's BEGIN, COHORT (channels cached), deal (Shamir shares of the
mask secret and the self-mask seed, t = 3, sealed per peer), receive (4 boxes opened), input
(the index set of 256 of 1,030 parameters, quantization, self mask and 4 pairwise masks) and
UNMASK answer. The program checks on the board that the round's unmasked sum equals the plain
sum. RAM: sizeof(flt_secagg_client_t) (FLT_SECAGG_MAX_COHORT 16); stack: each step's painted
high-water mark minus the program's own depth; flash: text + data of the secagg/ objects.
Instruction counts, not cycles. Prints a Markdown table and writes
bench/results/secagg_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.bench.bare import bench_bare, build_bare  # noqa: E402
from fltiny.boards import get_board  # noqa: E402
from fltiny.native.cross import TARGETS  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PROGRAM = REPO / "tests" / "c" / "secagg_target.c"
STEPS = ("session", "begin", "cohort", "deal", "receive", "input", "unmask")
MARKS = dict(zip(range(1, 8), STEPS, strict=True))
PER_ROUND = ("begin", "cohort", "deal", "receive", "input", "unmask")
MARGIN = 64  # flt_bench.c's FLT_BENCH_MARGIN_WORDS * 4
_LINE = re.compile(r"secagg target: ok ram=(\d+) stack " + " ".join(f"{s}=(\\d+)" for s in STEPS)
                   + r" baseline=(\d+)")


def flash_bytes(board, out: Path) -> dict[str, int]:
    size = TARGETS[board.arch].cc.replace("-gcc", "-size")
    sizes = {}
    stems = {p.stem for p in (REPO / "firmware" / "runtime" / "secagg").glob("*.c")}
    for obj in sorted(out.glob("*_secagg_*.o")):
        stem = obj.name.split("_secagg_")[1].removesuffix(".c.o")
        if stem not in stems:  # crypto/secagg_mask (bench/crypto_cost.py), the test program
            continue
        line = subprocess.run([size, str(obj)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()
        sizes[stem] = int(line[0]) + int(line[1])
    return sizes


def measure(name: str) -> dict:
    board = get_board(name)
    with tempfile.TemporaryDirectory(prefix="fltiny-secagg-") as tmp:
        elf = build_bare(board, [PROGRAM], ["proto", "crypto", "secagg"], Path(tmp),
                         name="secagg")
        code, out, net = bench_bare(board, elf)
        flash = flash_bytes(board, Path(tmp))
    m = _LINE.search(out)
    if code != 0 or not m:
        raise SystemExit(f"{name}: the secagg program failed ({code}): {out.strip()[-300:]}")
    base = int(m[len(STEPS) + 2])
    stack = {s: int(m[i + 2]) - base + MARGIN for i, s in enumerate(STEPS)}
    insn = {MARKS[i]: n for i, n in sorted(net.items())}
    return {"board": name, "instructions": insn,
            "per_round": sum(insn[s] for s in PER_ROUND),
            "stack_bytes": stack, "ram_bytes": int(m[1]), "flash_bytes": flash}


def table(rows: list[dict]) -> str:
    head = ["board", *(f"{s} (insn)" for s in STEPS), "per round", "client RAM (B)",
            "max stack (B)", "flash secagg/ (B)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        i = r["instructions"]
        cells = [r["board"], *(f"{i[s]:,}" for s in STEPS), f"{r['per_round']:,}",
                 f"{r['ram_bytes']:,}", f"{max(r['stack_bytes'].values()):,}",
                 f"{sum(r['flash_bytes'].values()):,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["qemu-m4f", "qemu-rv32"])
    ap.add_argument("--out", type=Path, default=RESULTS / "secagg_cost.json")
    args = ap.parse_args()
    rows = [measure(b) for b in args.boards]
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "host": platform.platform(), "command": "bench/secagg_cost.py " + " ".join(sys.argv[1:]),
        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
