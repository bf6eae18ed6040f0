"""On-target cost under QEMU, in guest INSTRUCTIONS (not cycles), measured deterministically.

    .venv/bin/python bench/ontarget_cost.py [--boards qemu-m4f ...] [--models har-tiny ...] [--n 64]

For each board and zoo model: builds the benchmark firmware (FLT_APP_BENCH,
firmware/app/flt_benchmain.c), runs it under QEMU (`-icount shift=0,sleep=off`) with the
instruction-count plugin (tools/qemu-plugin/insn_count.c) and reports the instructions executed
between marker functions, minus the marker overhead (an empty interval):
one backbone inference, one epoch of head training over n local windows (per sample: total / n,
and the marginal cost (train(n) - train(n/2)) / (n/2) from a second run with n/2 windows; the
epoch runs the backbone again at every use of a sample, as the device does, so "head train"
subtracts the FEATURES interval, the same backbone runs over the same windows), one
delta compress + payload encode (top 10%, int8), and one whole round (flt_round_run: backbone
over the n windows, training, delta, payload). Instructions per MAC: backbone instructions /
int8 MACs of the backbone (from the .tflite ops, fltiny.bench.macs), head training
instructions per sample (backbone excluded) / float MACs of the head's forward + backward pass;
instructions per weight: the same / the head's trainable parameters (issue 18's metric).

QEMU executes the guest's instructions without modelling pipelines, caches or flash wait states:
the counts are exactly reproducible and compare code paths and targets, but cycles on silicon
differ (multi-cycle loads, multiplies, divides, FPU ops; soft-float calls on the Cortex-M3).
Bundles: build/bench/bundles/<model> (exported with 1 training epoch when missing: the cost does
not depend on the weights' values). Prints a table and writes bench/results/ontarget_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.bench.macs import backbone_macs, head_train_macs  # noqa: E402
from fltiny.bench.ontarget import (  # noqa: E402
    DELTA,
    FEATURES,
    INFER,
    ROUND,
    TRAIN,
    bench_blob,
    bench_firmware,
    run_bench,
)
from fltiny.boards import get_board  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BOARDS = ("qemu-m3", "qemu-m4f", "qemu-m7", "qemu-rv32")
BUNDLES = REPO / "build" / "bench" / "bundles"


def ensure_bundle(model: str, root: Path = BUNDLES) -> Path:
    """The export bundle of a zoo model (1 training epoch), exported when missing."""
    out = root / model
    if not (out / "manifest.json").is_file():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from fltiny.train import TrainConfig
        from fltiny.workflow import export_bundle

        print(f"exporting {model} into {out} (1 epoch)", file=sys.stderr)
        export_bundle(out=out, model_name=model, train_config=TrainConfig(epochs=1))
    return out


def measure(board_name: str, model: str, n: int) -> dict:
    from fltiny.export.bundle import read_bundle

    board = get_board(board_name)
    bundle = ensure_bundle(model)
    _manifest, head, backbone = read_bundle(bundle)
    fw = bench_firmware(board, bundle, REPO / "build" / "bench" / "fw" / f"{board_name}-{model}")
    n = min(n, board.max_windows)
    full = run_bench(board, fw.elf, bench_blob(bundle, n))
    half = run_bench(board, fw.elf, bench_blob(bundle, n // 2))
    bb_macs = sum(o.macs for o in backbone_macs(backbone))
    hm = head_train_macs(head.layers)
    infer = full.net(INFER)
    train = full.net(TRAIN)
    per_sample = train / full.n
    marginal = (train - half.net(TRAIN)) / (full.n - half.n)
    # TRAIN runs the backbone (and dequantization) again at every use of a sample, once per
    # sample per epoch, over the same windows as FEATURES: the difference is the head's own
    # training, exactly (the counts are deterministic)
    head_full = train - full.net(FEATURES)
    head_half = half.net(TRAIN) - half.net(FEATURES)
    head_marginal = (head_full - head_half) / (full.n - half.n)
    return {
        "board": board_name, "model": model, "n_windows": full.n, "head_params": full.params,
        "backbone_macs": bb_macs, "head_train_macs_per_sample": hm,
        "insns": {
            "inference": infer,
            "features_per_window": full.net(FEATURES) / full.n,
            "train_total": train,
            "train_per_sample": per_sample,
            "train_per_sample_marginal": marginal,
            "head_train_per_sample_marginal": head_marginal,
            "delta_encode": full.net(DELTA),
            "round": full.net(ROUND),
            "marker_overhead": full.overhead,
            "whole_run": full.total_insns,
        },
        "insns_per_mac": {
            "backbone_int8": infer / bb_macs if bb_macs else None,
            "head_training": head_marginal / hm["total"],
        },
        "head_insns_per_weight": head_marginal / full.params,
        "payload_bytes": full.payload_bytes,
        "stack_high_water_bytes": full.stack_hwm,
        "stack_reserve_bytes": full.stack_reserve,
        "elf": str(fw.elf.relative_to(REPO)),
    }


def table(rows: list[dict]) -> str:
    head = ("| board | model | inference | insn/MAC int8 | train/sample | head train/sample | "
            "insn/MAC head | insn/weight head | delta encode | round (n) | payload B |")
    lines = [head, "| " + " | ".join(["---"] * 11) + " |"]
    for r in rows:
        i, m = r["insns"], r["insns_per_mac"]
        lines.append(
            f"| {r['board']} | {r['model']} | {i['inference']:,} | {m['backbone_int8']:.1f} | "
            f"{i['train_per_sample_marginal']:,.0f} | {i['head_train_per_sample_marginal']:,.0f} | "
            f"{m['head_training']:.1f} | {r['head_insns_per_weight']:.1f} | "
            f"{i['delta_encode']:,} | {i['round']:,} ({r['n_windows']}) | {r['payload_bytes']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=list(BOARDS))
    ap.add_argument("--models", nargs="+", default=["har-tiny", "har-small"])
    ap.add_argument("--n", type=int, default=64, help="training windows per round (capped by the board)")
    ap.add_argument("--out", type=Path, default=RESULTS / "ontarget_cost.json")
    args = ap.parse_args()
    rows = []
    for model in args.models:
        for b in args.boards:
            rows.append(measure(b, model, args.n))
            print(f"measured {b} {model}", file=sys.stderr)
    print("Guest instructions under QEMU (TCG plugin, -icount shift=0): instruction counts, not cycles.")
    print(table(rows))
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout
    meta = {"unit": "guest instructions (not cycles)", "qemu": qemu.splitlines()[0] if qemu else "",
            "host": platform.platform(), "command": "bench/ontarget_cost.py " + " ".join(sys.argv[1:]),
            "train": "1 epoch, batch 8, SGD lr 0.05 momentum 0.9; delta top 10% int8 per tensor",
            "train_per_sample": "marginal: (train(n) - train(n/2)) / (n/2), with the backbone "
                                "run again at every use of a sample",
            "head_train_per_sample": "the same marginal of train - features: the head's training "
                                     "alone; insn/MAC head and insn/weight head divide it by the "
                                     "head's float MACs per sample and by its parameters"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
