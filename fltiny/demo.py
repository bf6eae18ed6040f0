"""``make demo``: the main job on what exists today, saying what it did.

Train the factory model (har-tiny on HAPT users 1-10), export the int8 bundle verified against
TFLM, generate the ahead-of-time C backbone and check it against TFLM on held-out windows, then
run 10 federated rounds on 8 emulated boards of two instruction sets plus a native process
(``fltiny run``), every DELTA replayed bit for bit on the host.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fltiny.errors import FltinyError

OUT = Path("build/demo")


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

    step("2. federated rounds: 8 emulated boards (Cortex-M4F + RV32 under QEMU, native), 10 rounds")
    import shutil

    from fltiny.experiment import DataSettings, RoundConfig, RunOptions, TrainParams
    from fltiny.run.runner import run

    report = OUT / "run"
    if report.exists():
        shutil.rmtree(report)  # a fresh run each time (fltiny run --resume continues one)
    # 8 boards hold all 15 fleet users (users 11-25 dealt round-robin, whole: "grouped");
    # settings measured with fltiny simulate on three factory models (README, "Federated rounds")
    train = TrainParams(learning_rate=0.0005, epochs=3, topk_fraction=0.07)
    res = run(RunOptions(fleet=(("qemu-m4f", 4), ("qemu-rv32", 3), ("native", 1)),
                         server=RoundConfig(rounds=10, deadline_s=120, train=train),
                         data=DataSettings(bundle=result.out, partition="grouped"), out=report),
              say=lambda s: print(f"   {s}"), log=lambda _s: None)
    rows, s = res.rounds, res.summary
    print(f"   held-out accuracy (users 26-30, the device's C): initial {rows[0]['accuracy']:.4f}, "
          f"final {rows[-1]['accuracy']:.4f}")
    print(f"   {s['replayed']} device-rounds replayed on the host, "
          + ("all byte-identical" if s["replay_mismatches"] == 0
             else f"{s['replay_mismatches']} mismatched"))
    print(f"   uplink per device-round: delta payload {s['payload_bytes_per_device_round']:.0f} B, "
          f"DELTA frames {s['delta_wire_bytes_per_device_round']:.0f} B, all uplink bytes "
          f"{s['wire_up_bytes_per_device_round']:.0f} B; dense float32 head delta "
          f"{s['dense_float32_delta_bytes']} B ({s['payload_reduction_vs_dense']:.1f}x / "
          f"{s['delta_wire_reduction_vs_dense']:.1f}x / {s['wire_up_reduction_vs_dense']:.1f}x)")
    print(f"   report: {report} (metrics.json, metrics.csv, metrics.png, run.sqlite)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FltinyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
