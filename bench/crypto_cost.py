"""Secure aggregation's crypto on the emulated boards: instructions, stack and flash.

    .venv/bin/python bench/crypto_cost.py [--boards qemu-m4f qemu-rv32]

Builds tests/c/crypto_target.c as a bare program (fltiny.bench.bare: firmware/bare shell, the
runtime's proto + crypto components, -Os, the strict flags) for each board, runs it under QEMU
with `-icount shift=0,sleep=off` and the instruction-count plugin (tools/qemu-plugin) and reports
the instructions between the markers, minus the empty interval's overhead: one X25519 scalar
multiplication (flt_x25519), one ChaCha20 block (flt_chacha20_block), 16 blocks (1 KiB) of
keystream through the reader (flt_chacha20_read, per block), one HKDF-SHA256 (32-byte IKM,
8-byte salt and info, 32 bytes out) and one masking (flt_secagg_mask: 256 values, 4 peers: per
peer one HKDF and 1 KiB of keystream added mod 2^32). The program first checks the RFC vectors
and exits non-zero when one fails. Stack: the high-water mark of each call (painted stack) minus the
program's own depth (`baseline`, which includes flt_bench.c's 64-byte unpainted margin, added
back). Flash: text + data of each crypto object file. No static RAM: every context is the
caller's (flt_chacha20_t: 136 bytes). Instruction counts, not cycles (docs/benchmarks.md).
Prints a Markdown table and writes bench/results/crypto_cost.json.
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
PROGRAM = REPO / "tests" / "c" / "crypto_target.c"
MARKS = {1: "x25519", 2: "chacha20_block", 3: "chacha20_stream_16", 4: "hkdf",
         5: "mask_256x4"}
STREAM_BLOCKS = 16
MARGIN = 64  # flt_bench.c's FLT_BENCH_MARGIN_WORDS * 4
_STACK = re.compile(r"crypto target: ok stack x25519=(\d+) chacha20=(\d+) stream=(\d+) "
                    r"hkdf=(\d+) mask=(\d+) baseline=(\d+)")


def flash_bytes(board, out: Path) -> dict[str, int]:
    size = TARGETS[board.arch].cc.replace("-gcc", "-size")
    sizes = {}
    for obj in sorted(out.glob("*_crypto_*.o")):
        line = subprocess.run([size, str(obj)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()
        sizes[obj.name.split("_crypto_")[1].removesuffix(".c.o")] = int(line[0]) + int(line[1])
    return sizes


def measure(name: str) -> dict:
    board = get_board(name)
    with tempfile.TemporaryDirectory(prefix="fltiny-crypto-") as tmp:
        elf = build_bare(board, [PROGRAM], ["proto", "crypto"], Path(tmp), name="crypto")
        code, out, net = bench_bare(board, elf)
        flash = flash_bytes(board, Path(tmp))
    m = _STACK.search(out)
    if code != 0 or not m:
        raise SystemExit(f"{name}: the crypto program failed ({code}): {out.strip()[-300:]}")
    base = int(m[6])
    stack = {k: int(m[i + 1]) - base + MARGIN for i, k in enumerate(
        ("x25519", "chacha20_block", "chacha20_stream_16", "hkdf", "mask_256x4"))}
    return {"board": name, "instructions": {MARKS[i]: n for i, n in sorted(net.items())},
            "chacha20_per_block_streamed": net[3] / STREAM_BLOCKS, "stack_bytes": stack,
            "flash_bytes": flash}


def table(rows: list[dict]) -> str:
    lines = ["| board | X25519 (insn) | ChaCha20 block | ChaCha20 streamed / block | HKDF (32 B) "
             "| mask 256 values x 4 peers | stack X25519 / ChaCha20 / HKDF / mask (B) "
             "| flash x25519 / chacha20 / hkdf / mask (B) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        i, s, f = r["instructions"], r["stack_bytes"], r["flash_bytes"]
        lines.append(f"| {r['board']} | {i['x25519']:,} | {i['chacha20_block']:,} | "
                     f"{r['chacha20_per_block_streamed']:,.0f} | {i['hkdf']:,} | "
                     f"{i['mask_256x4']:,} | {s['x25519']:,} / {s['chacha20_block']:,} / "
                     f"{s['hkdf']:,} / {s['mask_256x4']:,} | {f['x25519']:,} / {f['chacha20']:,} "
                     f"/ {f['hkdf']:,} / {f['secagg_mask']:,} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["qemu-m4f", "qemu-rv32"])
    ap.add_argument("--out", type=Path, default=RESULTS / "crypto_cost.json")
    args = ap.parse_args()
    rows = [measure(b) for b in args.boards]
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "host": platform.platform(), "command": "bench/crypto_cost.py " + " ".join(sys.argv[1:]),
        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
