"""``make demo``: the main job on what exists today, saying what it did.

Train the factory model (har-tiny on HAPT users 1-10), export the int8 bundle verified against
TFLM, generate the ahead-of-time C backbone and check it against TFLM on held-out windows, then
run federated rounds on 15 emulated boards of two instruction sets plus native processes, one
HAPT fleet user per board (users 11-25, the natural partition), with the default settings that
bench/fleet_learning.py measures (``fltiny run``), every DELTA replayed bit for bit on the host.
It prints both measures of learning, initial -> final: held-out accuracy (the global model on
users 26-30, whom no device has seen) and personal accuracy (each board's own model on its own
future windows, the last 30 % in time order, which it never trains on; measured on the board).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fltiny.errors import FltinyError

OUT = Path("build/demo")
FLEET = (("qemu-m4f", 8), ("qemu-rv32", 5), ("native", 2))  # 15 boards, one fleet user each
ROUNDS = 10
LAST = 3  # rounds averaged for the final figures (one round's held-out accuracy is noisy)


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    t0 = time.perf_counter()
    step("1. train har-tiny on the factory users (1-10) and export the int8 bundle")
    result = export_bundle(out=OUT / "har-tiny", model_name="har-tiny", dataset="hapt",
                           train_config=TrainConfig(), progress=lambda m: print(f"   {m}"))
    q = result.quant
    print(f"   bundle {result.out}: {result.total_bytes} bytes "
          f"(int8 backbone {result.backbone_bytes}, float32 head {result.head_bytes})")
    if result.tflm is not None:
        print(f"   TFLM vs LiteRT: {result.tflm.mismatches}/{result.tflm.elements} outputs differ")
    print(f"   held-out users 26-30: float accuracy {q.float_value:.4f}, "
          f"int8 accuracy {q.int8_value:.4f}, agreement {q.agreement:.2%}")

    if result.c_check is not None:
        print(f"   {result.c_check}")

    boards = ", ".join(f"{n} x {b}" for b, n in FLEET)
    step(f"2. federated rounds: 15 boards ({boards}), one fleet user each, {ROUNDS} rounds")
    import shutil

    from fltiny.experiment import DataSettings, RoundConfig, RunOptions
    from fltiny.run.runner import run

    report = OUT / "run"
    if report.exists():
        shutil.rmtree(report)  # a fresh run each time (fltiny run --resume continues one)
    res = run(RunOptions(fleet=FLEET, server=RoundConfig(rounds=ROUNDS, deadline_s=300),
                         data=DataSettings(bundle=result.out, partition="natural"), out=report),
              progress=lambda m: print(f"   round {m.round:2d}: held-out accuracy "
                                       f"{m.evaluation['accuracy']:.4f}, personal accuracy "
                                       + (f"{m.personal['personal_accuracy']:.4f}"
                                          if m.personal else "-")
                                       + f" ({m.participants} boards, {m.seconds:.0f} s)",
                                       flush=True),
              say=lambda s: print(f"   {s}"), log=lambda _s: None)
    rows, s = res.rounds, res.summary
    last = [r for r in rows if r["round"] > 0][-LAST:]
    first = next(r for r in rows if r["round"] == 1)

    def mean(key: str) -> float:
        return sum(r[key] for r in last) / len(last)

    print(f"   held-out accuracy (users 26-30, the global model, the device's C): initial "
          f"{rows[0]['accuracy']:.4f} -> final {mean('accuracy'):.4f} (mean of the last {LAST} "
          f"rounds)")
    print(f"   personal accuracy (mean over the 15 boards, each on its own future windows, "
          f"measured on the board): initial {first['personal_accuracy']:.4f} (every board "
          f"serving the factory model) -> final {mean('personal_accuracy'):.4f}; worst board "
          f"{first['personal_accuracy_worst']:.4f} -> {mean('personal_accuracy_worst'):.4f}")
    print(f"   {s['replayed']} device-rounds replayed on the host, "
          + ("all byte-identical" if s["replay_mismatches"] == 0
             else f"{s['replay_mismatches']} mismatched"))
    print(f"   uplink per device-round: delta payload {s['payload_bytes_per_device_round']:.0f} B, "
          f"DELTA frames {s['delta_wire_bytes_per_device_round']:.0f} B, all uplink bytes "
          f"{s['wire_up_bytes_per_device_round']:.0f} B; dense float32 delta of the trained "
          f"parameters {s['dense_float32_delta_bytes']} B "
          f"({s['payload_reduction_vs_dense']:.1f}x / {s['delta_wire_reduction_vs_dense']:.1f}x / "
          f"{s['wire_up_reduction_vs_dense']:.1f}x)")
    print(f"   report: {report} (metrics.json, metrics.csv, metrics.png, run.sqlite)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FltinyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
