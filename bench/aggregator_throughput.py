"""Aggregator throughput: decode and FedAvg-aggregate N compressed updates, beside Flower's
FedAvg aggregation of the same updates as dense float32 arrays.

    .venv/bin/python bench/aggregator_throughput.py [--quick]

fltiny path: each update is an int8 top-k payload (10% of the head, error feedback on the
device side does not matter here); all N payloads go to ONE C call (firmware/runtime/delta/
accumulate.c via fltiny.native.accumulate, what the FedAvg family's ``weighted_sum`` does),
which validates each with the decoder's rules, measures its norm and adds its k entries,
weighted by its example count, into one running float64 sum: memory stays O(head size)
whatever N is. Flower path: ``flwr.server.strategy.aggregate.aggregate`` over
``[(ndarrays, num_examples)]`` holding the dense float32 deltas (what Flower's FedAvg does in
``aggregate_fit``), which needs all N dense arrays in memory at once.
The updates are a pool of 64 distinct real payloads reused round-robin, each update its own copy
(bytes for fltiny, a float32 array for Flower) so neither side reads one cached buffer.
Prints a table and writes bench/results/aggregator.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from pathlib import Path

import numpy as np

from fltiny.native import delta as nd
from fltiny.native.accumulate import Accumulator
from fltiny.native.delta import PayloadDecoder

POOL = 64
RESULTS = Path(__file__).parent / "results"


def make_pool(n: int, fraction: float, seed: int = 0) -> tuple[list[bytes], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    payloads, dense = [], []
    for _ in range(POOL):
        local = rng.normal(0, 0.01, n).astype(np.float32)
        k = min(n, max(1, int(n * fraction)))
        delta, _ = nd.compress(local, np.zeros(n, np.float32), None, k=k)
        payloads.append(nd.encode_payload(delta))
        dense.append(PayloadDecoder(n).decode_dense(payloads[-1]))
    return payloads, dense


def fltiny_fedavg(payloads: list[bytes], n: int, count: int) -> tuple[float, np.ndarray]:
    updates = [bytes(bytearray(payloads[i % POOL])) for i in range(count)]
    weights = np.array([100 + i % 7 for i in range(count)], np.float64)
    t0 = time.perf_counter()
    acc = Accumulator(n)
    res = acc.add(updates, weights)
    result = acc.mean()
    elapsed = time.perf_counter() - t0
    if not res.ok.all():
        raise SystemExit(f"fltiny rejected {int((~res.ok).sum())} payloads")
    return elapsed, result


def flower_fedavg(dense: list[np.ndarray], count: int) -> tuple[float, np.ndarray]:
    from flwr.server.strategy.aggregate import aggregate

    results = [([dense[i % POOL].copy()], 100 + i % 7) for i in range(count)]
    t0 = time.perf_counter()
    out = aggregate(results)
    elapsed = time.perf_counter() - t0
    del results
    gc.collect()
    return elapsed, out[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1,000 only")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per side and size; the fastest counts (default 3)")
    args = ap.parse_args()
    if args.repeat < 1:
        raise SystemExit(f"--repeat must be at least 1, got {args.repeat}")
    counts = [1000] if args.quick else [1000, 10000]
    rows = []
    print(f"{'head':>8} {'N':>6} {'payload B':>9} {'fltiny s':>9} {'upd/s':>9} "
          f"{'flower s':>9} {'upd/s':>9} {'ratio':>6} {'max|diff|':>10}")
    for n in (10_000, 100_000):
        payloads, dense = make_pool(n, 0.1)
        mean_payload = int(np.mean([len(p) for p in payloads]))
        fltiny_fedavg(payloads, n, 1)  # warm-up: loads (first time builds) the native library
        for count in counts:
            t_fl, ours = min((fltiny_fedavg(payloads, n, count) for _ in range(args.repeat)),
                             key=lambda r: r[0])
            t_fw, theirs = min((flower_fedavg(dense, count) for _ in range(args.repeat)),
                               key=lambda r: r[0])
            diff = float(np.abs(ours - theirs.astype(np.float64)).max())
            row = {"head_params": n, "updates": count, "payload_bytes": mean_payload,
                   "dense_bytes": 4 * n, "fltiny_seconds": t_fl, "flower_seconds": t_fw,
                   "fltiny_updates_per_s": count / t_fl, "flower_updates_per_s": count / t_fw,
                   "ratio": t_fw / t_fl, "max_abs_diff": diff}
            rows.append(row)
            print(f"{n:8d} {count:6d} {mean_payload:9d} {t_fl:9.3f} {count / t_fl:9.0f} "
                  f"{t_fw:9.3f} {count / t_fw:9.0f} {t_fw / t_fl:6.1f} {diff:10.2e}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(),
            "command": "python bench/aggregator_throughput.py",
            "repeat": args.repeat}
    (RESULTS / "aggregator.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
