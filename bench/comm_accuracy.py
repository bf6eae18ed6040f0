"""Communication against accuracy on the wire: bytes per device-round up and down (frames,
tags, COBS and ACKs included), bits per trained parameter, the ratio to the dense float32
delta and to the payload's entropy bound, and accuracy, for the fleet-learning defaults and
their variants, over three factory seeds.

    .venv/bin/python bench/comm_accuracy.py [--rounds 30] [--seeds 0 1 2] [--models har-tiny har-small]

On the firmware's C (the fleet of ``fltiny simulate``: every round is flt_round_run, every
message is framed by the C encoder, so the byte counts are the wire's), natural partition,
the 15 HAPT fleet users one per device, FedDyn and the other defaults of
fltiny.server.config. Models: har-tiny with its float tail (last conv + head, 1,030 trained
parameters) and har-small with its float tail (``--train-convs 1``: conv2 + conv3 + head,
the >= 4,000-parameter case). Variants:

- **defaults**: top-10 % 4-bit updates up, top-25 % 4-bit GLOBAL deltas down;
- **8-bit**: the same with int8 values both ways (the previous width);
- **dense float32 up**: the exact float32 delta up (4 bytes per parameter plus framing), the
  default downlink: the same training, the reference for "within 0.5 point".

Per variant, mean over the seeds of: held-out and personal accuracy (mean of rounds 26-30),
uplink and downlink bytes per device-round in the steady state (rounds 2+), bits per
parameter up, the ratio of the dense float32 delta (4 bytes per parameter) to the uplink
bytes, and the payloads against their empirical entropy bound: k x (H(values) + H(index
gaps)) bits from the pooled symbols of that variant (an ideal coder of those symbols, without
any header). Writes bench/results/comm_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from fleet_learning import LAST, bundle_for  # noqa: E402

from fltiny.experiment import DataSettings, Experiment, SimConfig  # noqa: E402
from fltiny.native.delta import PayloadDecoder  # noqa: E402
from fltiny.report.wire import WireFigures  # noqa: E402
from fltiny.server.config import RoundConfig, TrainParams  # noqa: E402
from fltiny.sim.fleet import SimFleet  # noqa: E402

RESULTS = REPO / "bench" / "results"
TAIL = ("--train-convs", "1")


@dataclass(frozen=True)
class Variant:
    name: str
    value_bits: int = TrainParams().value_bits
    down_bits: int = RoundConfig().down_bits
    dense_float: bool = False


VARIANTS = (Variant("defaults"), Variant("8-bit", value_bits=8, down_bits=8),
            Variant("dense float32 up", dense_float=True))


@dataclass
class Row:
    variant: str
    model: str
    seed: int
    n_params: int
    heldout: float
    personal: float
    factory_heldout: float
    factory_personal: float
    wire: dict
    payload_bytes: float = 0.0
    entropy_bound_bytes: float = 0.0
    curve: list[float] = field(default_factory=list)


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical entropy in bits per symbol."""
    if symbols.size == 0:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def payload_entropy(payloads: list[bytes], n: int) -> tuple[float, float]:
    """(mean payload bytes, mean entropy bound in bytes) over the payloads."""
    dec = PayloadDecoder(n)
    values, gaps, ks = [], [], []
    for raw in payloads:
        d = dec.decode(raw)
        values.append(d.values.astype(np.int16))
        gaps.append(np.diff(np.concatenate([[-1], d.indices.astype(np.int64)])))
        ks.append(d.k)
    h = entropy_bits(np.concatenate(values)) + entropy_bits(np.concatenate(gaps))
    return float(np.mean([len(p) for p in payloads])), float(np.mean(ks) * h / 8)


def run_one(model: str, bundle: Path, variant: Variant, seed: int, rounds: int) -> Row:
    with tempfile.TemporaryDirectory(prefix="fltiny-comm-") as tmp:
        train = replace(TrainParams(), value_bits=variant.value_bits)
        cfg = SimConfig(clients=15, data=DataSettings(dataset="hapt", bundle=bundle,
                                                      partition="natural"),
                        server=RoundConfig(rounds=rounds, train=train,
                                           down_bits=variant.down_bits),
                        dense_float=variant.dense_float, out=Path(tmp))
        exp = Experiment(cfg, cfg.clients)
        fleet = SimFleet(exp.host, exp.blobs(), dense_float=variant.dense_float,
                         keep_payloads=not variant.dense_float, down_topk=cfg.server.down_topk,
                         down_bits=cfg.server.down_bits)
        store = exp.open_store(resume=False)
        try:
            res = exp.result(store, exp.run_rounds(fleet, store, lambda _m: None))
        finally:
            store.close()
        rows = [r for r in res.rounds if r["round"] > 0]
        held = [float(r["accuracy"]) for r in rows]
        pers = [float(r["personal_accuracy"]) for r in rows]
        out = Row(variant.name, model, seed, exp.host.n_params, float(np.mean(held[-LAST:])),
                  float(np.mean(pers[-LAST:])), float(res.rounds[0]["accuracy"]), pers[0],
                  res.summary["wire"], curve=held)
        if fleet.payloads:
            out.payload_bytes, out.entropy_bound_bytes = payload_entropy(
                list(fleet.payloads.values()), exp.host.n_params)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["har-tiny", "har-small"])
    ap.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS])
    args = ap.parse_args()
    rows: list[Row] = []
    for model in args.models:
        for variant in (v for v in VARIANTS if v.name in args.variants):
            for seed in args.seeds:
                t0 = time.perf_counter()
                r = run_one(model, bundle_for(model, seed, TAIL), variant, seed, args.rounds)
                rows.append(r)
                w = r.wire
                print(f"{model} {variant.name} seed {seed}: held-out {r.factory_heldout:.4f} -> "
                      f"{r.heldout:.4f}, personal {r.factory_personal:.4f} -> {r.personal:.4f}, "
                      f"{w['up_bytes_per_device_round']:.0f} B up, "
                      f"{w['down_bytes_per_device_round']:.0f} B down, payload "
                      f"{r.payload_bytes:.1f} B (bound {r.entropy_bound_bytes:.1f}), "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\nHAPT, 15 devices, {args.rounds} rounds, seeds {args.seeds}; means over the seeds "
          "(accuracy: rounds 26-30; bytes: per device-round, rounds 2+)")
    print("| model (trained params) | variant | held-out | personal | B up | bits/param | "
          "x below dense | B down | x below dense | payload / entropy bound |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary = []
    for model in args.models:
        for variant in VARIANTS:
            rs = [r for r in rows if r.model == model and r.variant == variant.name]
            if not rs:
                continue
            w = WireFigures(rs[0].n_params,
                            float(np.mean([r.wire["up_bytes_per_device_round"] for r in rs])),
                            float(np.mean([r.wire["down_bytes_per_device_round"] for r in rs])),
                            0.0, 0.0, 1)
            pay = float(np.mean([r.payload_bytes for r in rs]))
            bound = float(np.mean([r.entropy_bound_bytes for r in rs]))
            s = {"model": model, "variant": variant.name, "n_params": rs[0].n_params,
                 "heldout": float(np.mean([r.heldout for r in rs])),
                 "personal": float(np.mean([r.personal for r in rs])),
                 "heldout_min_gain": float(min(r.heldout - r.factory_heldout for r in rs)),
                 "up": w.up, "down": w.down, "up_bits_per_param": w.up_bits_per_param,
                 "up_ratio": w.up_ratio, "down_ratio": w.down_ratio,
                 "payload_bytes": pay, "entropy_bound_bytes": bound}
            summary.append(s)
            ratio = f"{pay:.1f} / {bound:.1f} B = {pay / bound:.2f}x" if bound else "-"
            print(f"| {model} ({rs[0].n_params:,}) | {variant.name} | {s['heldout']:.4f} | "
                  f"{s['personal']:.4f} | {w.up:.0f} | {w.up_bits_per_param:.2f} | "
                  f"{w.up_ratio:.1f} | {w.down:.0f} | {w.down_ratio:.1f} | {ratio} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"command": "bench/comm_accuracy.py " + " ".join(sys.argv[1:]), "summary": summary,
           "rows": [r.__dict__ for r in rows]}
    (RESULTS / "comm_accuracy.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'comm_accuracy.json'}")


if __name__ == "__main__":
    main()
