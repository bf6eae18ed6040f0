"""``make demo``: the main job on what exists today, saying what it did.

Today: train the factory model (har-tiny on HAPT users 1-10), export the int8 bundle verified
against TFLM, generate the ahead-of-time C backbone and check it against TFLM on held-out
windows. Federated rounds on emulated boards join here as they land (see the issues).
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

    step("not yet part of the demo")
    print("   firmware builds for emulated boards, and federated rounds over serial/TCP")
    print("   (issues 4 and 5) join this demo when they land.")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FltinyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
