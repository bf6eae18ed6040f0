"""Communication against accuracy: dense float32 FedAvg, dense int8, and top-k int8 with and
without error feedback at k = 10%, 5% and 1%, in one run per dataset, on the firmware's own C
runtime (fltiny simulate's fleet: every delta is the bytes a board would send).

    .venv/bin/python bench/comm_accuracy.py [--rounds 30] [--datasets hapt thermostat]

Per configuration: uplink bytes per device-round (the DELTA payload; dense float32 counts
4 bytes per parameter), rounds to the target (HAPT: held-out accuracy >= 0.90; thermostat:
held-out MAE <= the factory model's minus 10%), final metric, and the empirical entropy bound
of the payloads: k * (H(int8 values) + H(index gaps)) bits from the pooled distributions of
that configuration, against the bytes actually sent. Prints tables and writes
bench/results/comm_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fltiny.devices.data import fleet_blobs
from fltiny.devices.replay import HostRound
from fltiny.native.delta import PayloadDecoder
from fltiny.run.evaluate import HoldoutEvaluator
from fltiny.server.rounds import RoundConfig, TrainParams, run_rounds
from fltiny.server.store import RunStore
from fltiny.sim.fleet import SimFleet
from fltiny.strategies import make_strategy
from fltiny.workflow import ensure_bundle

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Variant:
    name: str
    topk: float
    error_feedback: bool
    dense_float: bool = False


VARIANTS = (
    Variant("dense float32", 1.0, False, dense_float=True),
    Variant("dense int8", 1.0, True),
    Variant("top-k 10% int8 + EF", 0.10, True),
    Variant("top-k 5% int8 + EF", 0.05, True),
    Variant("top-k 1% int8 + EF", 0.01, True),
    Variant("top-k 10% int8, no EF", 0.10, False),
    Variant("top-k 5% int8, no EF", 0.05, False),
    Variant("top-k 1% int8, no EF", 0.01, False),
)


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical entropy in bits per symbol."""
    if symbols.size == 0:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def payload_entropy(payloads: list[bytes], n: int) -> tuple[float, float]:
    """(mean bytes sent, mean entropy bound in bytes) over the payloads."""
    values, gaps, ks = [], [], []
    for raw in payloads:
        d = PayloadDecoder(n).decode(raw)
        values.append(d.values.astype(np.int16))
        gaps.append(np.diff(np.concatenate([[-1], d.indices.astype(np.int64)])))
        ks.append(d.k)
    h = entropy_bits(np.concatenate(values)) + entropy_bits(np.concatenate(gaps))
    return float(np.mean([len(p) for p in payloads])), float(np.mean(ks) * h / 8)


def run_variant(host: HostRound, blobs, evaluate, variant: Variant, rounds: int,
                base: TrainParams, workdir: Path) -> dict:
    train = replace(base, topk_fraction=variant.topk, error_feedback=variant.error_feedback)
    fleet = SimFleet(host, blobs, dense_float=variant.dense_float, keep_payloads=True)
    db = workdir / f"{variant.name.replace(' ', '_').replace('%', 'pct')}.sqlite"
    db.unlink(missing_ok=True)
    store = RunStore(db)
    t0 = time.perf_counter()
    metrics = run_rounds(fleet, make_strategy("fedavg"), store, RoundConfig(rounds=rounds,
                         train=train), host.head.params.astype(np.float32), evaluate)
    store.close()
    device_rounds = sum(m.participants + m.rejected for m in metrics)
    row = {
        "variant": variant.name,
        "bytes_up_per_device_round": sum(m.bytes_up for m in metrics) / device_rounds,
        "curve": [m.evaluation for m in metrics],
        "seconds": time.perf_counter() - t0,
    }
    if fleet.payloads:
        sent, bound = payload_entropy(list(fleet.payloads.values()), host.n_params)
        row["payload_bytes"], row["entropy_bound_bytes"] = sent, bound
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--datasets", nargs="+", default=["hapt", "thermostat"])
    args = ap.parse_args()
    out: dict[str, dict] = {}
    for dataset in args.datasets:
        bundle = ensure_bundle(None, dataset, print)
        host = HostRound(bundle)
        n_dev = {"hapt": 15, "thermostat": 25}.get(dataset, 15)
        blobs = fleet_blobs(bundle, n_dev, dataset=dataset, scheme="natural")
        evaluate = HoldoutEvaluator.for_dataset(host, dataset)
        initial = evaluate(host.head.params)
        metric = "accuracy" if "accuracy" in initial else "mae"
        target = 0.90 if metric == "accuracy" else 0.9 * initial["mae"]
        def better(v: float, target: float = target, metric: str = metric) -> bool:
            return v >= target if metric == "accuracy" else v <= target

        dense_bytes = 4 * host.n_params
        work = RESULTS.parent.parent / "build" / "bench" / "comm_accuracy" / dataset
        work.mkdir(parents=True, exist_ok=True)
        print(f"\n{dataset}: {n_dev} devices (one {'user' if dataset == 'hapt' else 'home'} each), "
              f"{bundle.name} head of {host.n_params} parameters ({dense_bytes} B dense float32), "
              f"{args.rounds} rounds, FedAvg; initial {metric} {initial[metric]:.4f}, "
              f"target {metric} {'>=' if metric == 'accuracy' else '<='} {target:.4f}")
        print(f"{'variant':24s} {'B up/dev-round':>14s} {'x smaller':>9s} {'rounds to target':>16s} "
              f"{'final ' + metric:>14s} {'best':>7s} {'entropy bound B':>15s}")
        rows = []
        for v in VARIANTS:
            row = run_variant(host, blobs, evaluate, v, args.rounds, TrainParams(), work)
            curve = [c[metric] for c in row["curve"]]
            hit = next((i + 1 for i, c in enumerate(curve) if better(c)), None)
            row.update(rounds_to_target=hit, final=curve[-1],
                       best=max(curve) if metric == "accuracy" else min(curve),
                       reduction=dense_bytes / row["bytes_up_per_device_round"])
            rows.append(row)
            bound = f"{row['entropy_bound_bytes']:.1f}" if "entropy_bound_bytes" in row else "-"
            print(f"{v.name:24s} {row['bytes_up_per_device_round']:14.1f} {row['reduction']:9.1f} "
                  f"{str(hit or '-'):>16s} {row['final']:14.4f} {row['best']:7.4f} {bound:>15s}",
                  flush=True)
        out[dataset] = {"model": bundle.name, "devices": n_dev, "head_params": host.n_params,
                        "initial": initial, "metric": metric, "target": target,
                        "rounds": args.rounds, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "comm_accuracy.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
