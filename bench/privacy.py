"""Differential privacy: held-out accuracy against epsilon, on thousands of devices.

    .venv/bin/python bench/privacy.py [--seeds 0 1 2] [--devices 2000] [--rate 0.05]
                                      [--rounds 30] [--epsilons 1 4 8] [--clip 0.1] [--local]

``--local``: local DP instead of central (each device clips its own update to ``--clip`` and
adds the noise itself, in C: --ldp-clip / --ldp-epsilon; epsilon is the worst device's over the
planned rounds, without the sampling amplification central DP gets); variants: each epsilon and
the plain run; writes bench/results/privacy_local.json.

On the firmware's C (``fltiny simulate``'s fleet), HAPT har-tiny with its float tail (the
factory bundles of bench/fleet_learning.py, seeds 0, 1, 2), the fleet users' windows split iid
over ``--devices`` devices (user-level DP means one device's data; 2,000 devices hold 2-3
windows each), FedAvg (DP-FedAvg: every device Poisson-sampled at ``--rate`` each round, each
update clipped to L2 norm ``--clip``, Gaussian noise on the sum; fltiny/privacy/central.py),
the other round settings at their defaults. Per epsilon (at delta 1e-5 over the planned rounds,
the noise multiplier from dp-accounting's RDP accountant), the same clipped run without noise
("clip only", epsilon infinite) and the plain run (no clipping, no noise, the same Poisson rate
through --fraction): held-out accuracy (users 26-30; mean of the last five rounds, worst seed)
and the devices' personal accuracy. The clip norm is one fixed setting for every seed (about
the 75th percentile of the plain run's first-round update norms, 0.05-0.12), not tuned per
model. Prints the table; writes bench/results/privacy.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from fleet_learning import TAIL, bundle_for  # noqa: E402

from fltiny.experiment import DataSettings, RoundConfig, SimConfig  # noqa: E402
from fltiny.server.config import TrainParams  # noqa: E402
from fltiny.sim.run import simulate  # noqa: E402

RESULTS = REPO / "bench" / "results"
LAST = 5
DELTA = 1e-5


@dataclass(frozen=True)
class Variant:
    name: str
    epsilon: float | None  # None: no noise
    clip: bool
    local: bool = False  # local DP (on the devices) instead of central


def server_config(v: Variant, args: argparse.Namespace) -> RoundConfig:
    if v.local:
        return RoundConfig(rounds=args.rounds, fraction=args.rate, dp_delta=DELTA,
                           ldp_epsilon=v.epsilon if v.clip else None,
                           train=TrainParams(ldp_clip=args.clip if v.clip else 0.0))
    return RoundConfig(rounds=args.rounds, fraction=args.rate,
                       dp_clip=args.clip if v.clip else 0.0,
                       dp_noise=0.0 if v.clip and v.epsilon is None else None,
                       dp_epsilon=v.epsilon, dp_delta=DELTA)


def run_one(bundle: Path, v: Variant, args: argparse.Namespace) -> dict:
    server = server_config(v, args)
    with tempfile.TemporaryDirectory(prefix="fltiny-privacy-") as tmp:
        res = simulate(SimConfig(clients=args.devices, strategy="fedavg",
                                 data=DataSettings(dataset="hapt", bundle=bundle, partition="iid"),
                                 server=server, out=Path(tmp)))
    rows = [r for r in res.rounds if r["round"] > 0]
    held = [float(r["accuracy"]) for r in rows]
    pers = [float(r["personal_accuracy"]) for r in rows if r.get("personal_accuracy") is not None]
    eps = rows[-1].get("ldp_epsilon" if v.local else "epsilon")
    noise = ((res.summary.get("local_dp") or {}).get("ldp_noise") if v.local
             else (res.summary.get("privacy") or {}).get("dp_noise"))
    return {"factory": float(res.rounds[0]["accuracy"]), "heldout": float(np.mean(held[-LAST:])),
            "personal": float(np.mean(pers[-LAST:])) if pers else None,
            "epsilon": None if eps is None else float(eps), "noise": noise}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 4.0, 8.0])
    ap.add_argument("--clip", type=float, default=0.1)
    ap.add_argument("--local", action="store_true", help="local DP on the devices")
    args = ap.parse_args()
    if args.local:
        variants = ([Variant(f"local eps {e:g}", e, True, local=True) for e in args.epsilons]
                    + [Variant("no DP", None, False, local=True)])
    else:
        variants = ([Variant(f"epsilon {e:g}", e, True) for e in args.epsilons]
                    + [Variant("clip only", None, True), Variant("no DP", None, False)])
    out: dict = {"command": " ".join(["bench/privacy.py", *sys.argv[1:]]), "devices": args.devices,
                 "mode": "local" if args.local else "central",
                 "rate": args.rate, "rounds": args.rounds, "clip": args.clip, "delta": DELTA,
                 "variants": []}
    for v in variants:
        per_seed = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            r = run_one(bundle_for("har-tiny", seed, TAIL), v, args)
            per_seed.append({"seed": seed, **r})
            print(f"{v.name} seed {seed}: held-out {r['factory']:.4f} -> {r['heldout']:.4f}, "
                  f"personal {r['personal'] or 0:.4f}, epsilon {r['epsilon']}, noise "
                  f"{r['noise']}, {time.perf_counter() - t0:.0f} s", flush=True)
        out["variants"].append({"name": v.name, "seeds": per_seed})
    print(f"\nHAPT har-tiny, {args.devices} devices (iid), Poisson rate {args.rate:g}, clip "
          f"{args.clip:g}, {args.rounds} rounds, delta {DELTA:g}; mean of rounds "
          f"{args.rounds - LAST + 1}-{args.rounds} over {len(args.seeds)} factory seeds")
    print(f"{'variant':<12} {'epsilon':>8} {'noise z':>8} {'held-out':>9} {'worst':>7} "
          f"{'vs factory':>10} {'personal':>9}")
    for v in out["variants"]:
        s = v["seeds"]
        eps = s[0]["epsilon"]
        noise = s[0]["noise"]
        print(f"{v['name']:<12} {'-' if eps is None else f'{eps:.2f}':>8} "
              f"{'-' if noise is None else f'{noise:.3f}':>8} "
              f"{np.mean([x['heldout'] for x in s]):9.4f} {min(x['heldout'] for x in s):7.4f} "
              f"{100 * min(x['heldout'] - x['factory'] for x in s):+10.1f} "
              f"{np.mean([x['personal'] or 0 for x in s]):9.4f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "privacy_local.json" if args.local else "privacy.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / name}")


if __name__ == "__main__":
    main()
