"""`fltiny simulate` at fleet scale: wall time, peak memory and the held-out metric.

    .venv/bin/python bench/sim_scale.py                          # HAPT, 10,000 x 10, full
    .venv/bin/python bench/sim_scale.py --datasets hapt thermostat --workers 1 0 \\
        [--fraction 0.1] [--json out.json]

Each row is one `fltiny simulate --clients N --rounds R --fraction F --workers W` run as a
user starts it (the CLI, start-up, data, every device round on the firmware's C, the wire
count, the held-out evaluation and the report included), in a process of its own; peak memory
is the peak of the summed RSS of that process and its worker processes, sampled every 0.2 s
(forked workers share pages with their parent, so the sum is an upper bound). ``--workers 0``
is the default: one worker process per CPU core.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fltiny.bench.procs import run_sampled  # noqa: E402

_METRIC = re.compile(r"^held-out (\w+): initial ([-\d.]+), final ([-\d.]+)$", re.M)


def measure(dataset: str, clients: int, rounds: int, fraction: float, workers: int) -> dict:
    out = ROOT / "build" / "bench" / "sim_scale" / f"{dataset}-{clients}-w{workers}"
    cmd = [str(ROOT / ".venv" / "bin" / "fltiny"), "simulate", "--dataset", dataset,
           "--clients", str(clients), "--rounds", str(rounds), "--fraction", str(fraction),
           "--workers", str(workers), "--out", str(out)]
    run = run_sampled(cmd)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {run.returncode}): {run.stdout[-2000:]}")
    metric = _METRIC.search(run.stdout)
    if metric is None:
        raise SystemExit(f"no held-out metric in the output of {' '.join(cmd)}")
    return {"dataset": dataset, "clients": clients, "rounds": rounds, "fraction": fraction,
            "workers": workers, "device_rounds": round(clients * fraction) * rounds,
            "wall_seconds": run.wall_seconds, "peak_rss_mib": run.peak_rss / 2**20,
            "metric": metric.group(1), "initial": float(metric.group(2)),
            "final": float(metric.group(3))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["hapt"], choices=("hapt", "thermostat"))
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[0],
                    help="worker processes per run (0: one per core, the default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = [measure(d, args.clients, args.rounds, args.fraction, w)
            for d in args.datasets for w in args.workers]
    print("| dataset | devices | rounds x fraction | workers | device-rounds | wall s | "
          "device-rounds/s | peak RSS MiB | held-out, initial -> final |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['clients']:,} | {r['rounds']} x {r['fraction']:g} | "
              f"{r['workers'] or 'auto'} | {r['device_rounds']:,} | {r['wall_seconds']:.1f} | "
              f"{r['device_rounds'] / r['wall_seconds']:.0f} | {r['peak_rss_mib']:.0f} | "
              f"{r['metric']} {r['initial']:.4f} -> {r['final']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
