"""Poisoning: what 20 % Byzantine devices do to the held-out accuracy, per attack and defense.

    .venv/bin/python bench/poisoning.py [--seeds 0 1 2] [--rounds 30] [--jobs 2]
                                        [--attacks sign-flip ...] [--defenses fedavg ...]

On the firmware's C (``fltiny simulate``'s fleet, fltiny/sim), HAPT har-tiny with the defaults
of bench/fleet_learning.py's "new" configuration (float tail, its cached bundles per factory
seed, natural partition, 15 fleet devices = users 11-25, held-out users 26-30), 3 of the 15
devices Byzantine (``--byzantine 0.2``, a seeded choice per run seed: the run seed is the
factory seed). Each Byzantine device runs the C round and then attacks
(fltiny/sim/adversary.py): sign-flip, scale10, noise, label-flip, model-replacement.

Defenses are of two kinds (``Defense``): acceptance checks on each update before any
aggregation (fltiny/server/validate.py, the bridge's: ``--max-update-norm``, on at 10 x the
model's norm in every run, and ``--anomaly-threshold``, a robust z-score of the update's norm
against the round's median), and aggregation rules (fltiny/strategies). FedDyn's server step
composes with a rule as ``feddyn+<rule>`` (fltiny/strategies/robust_feddyn.py).

Per defense, seed and attack (and the clean run, no Byzantine device): the held-out accuracy,
mean of the last five rounds; the honest devices' personal accuracy, same rounds; updates
rejected by the checks. The table shows the worst seed of each cell and, per attack, the
largest drop against the clean run of the same defense and seed. Writes
bench/results/poisoning.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from fleet_learning import CONFIGS, LAST, RESULTS, bundle_for  # noqa: E402

from fltiny.experiment import DataSettings, RoundConfig, SimConfig  # noqa: E402
from fltiny.server.store import RunStore  # noqa: E402
from fltiny.sim.byzantine import ATTACKS  # noqa: E402
from fltiny.sim.run import simulate  # noqa: E402

BASE = CONFIGS["new"]  # the defaults, on their float-tail bundles
CLIENTS = 15
BYZANTINE = 0.2  # 3 of 15
F = 3  # Byzantine devices a rule is told to tolerate (Krum's f)
CLEAN = "clean"


@dataclass(frozen=True)
class Defense:
    name: str
    strategy: str
    what: str
    options: tuple[tuple[str, Any], ...] = ()
    anomaly_threshold: float = float("inf")  # the acceptance check (--anomaly-threshold)
    reputation_threshold: float = 0.0  # the aggregator's quarantine (--reputation-threshold)


DEFENSES = {d.name: d for d in (
    Defense("fedavg", "fedavg", "FedAvg: the example-weighted mean, no defense"),
    Defense("feddyn", "feddyn", "FedDyn (the default): FedAvg's mean + drift control"),
    Defense("median", "median", "coordinate-wise median"),
    Defense("trimmed-mean", "trimmed-mean", "trimmed mean, 20 % cut per side",
            (("beta", 0.2),)),
    Defense("krum", "krum", "Krum, f = 3", (("f", F),)),
    Defense("multi-krum", "multi-krum", "Multi-Krum, f = 3, mean of the n - f = 12 best",
            (("f", F), ("m", CLIENTS - F))),
    Defense("reputation", "reputation", "validation + reputation (trust score against the "
            "trimmed mean, median-norm clip, reputation over rounds)"),
    Defense("feddyn+anomaly", "feddyn", "FedDyn with the anomaly check: updates whose norm "
            "z-score against the round's median exceeds 6 are rejected", anomaly_threshold=6.0),
    Defense("feddyn+quarantine", "feddyn", "FedDyn with the aggregator's reputation "
            "quarantine (fltiny.server.reputation: a moving average of rounds with anomaly "
            "score <= 6; quarantined below 0.5)", reputation_threshold=0.5),
    Defense("feddyn+trimmed-mean", "feddyn+trimmed-mean", "FedDyn's server step on the "
            "trimmed mean (20 %)", (("beta", 0.2),)),
    Defense("feddyn+multi-krum", "feddyn+multi-krum", "FedDyn's server step on Multi-Krum "
            "(f = 3, m = 12)", (("f", F), ("m", CLIENTS - F))),
    Defense("feddyn+reputation", "feddyn+reputation", "FedDyn's server step on validation + "
            "reputation"),
)}


# the table of docs/benchmarks.md; krum, feddyn+trimmed-mean and feddyn+multi-krum on request
DEFAULT_DEFENSES = ("fedavg", "feddyn", "median", "trimmed-mean", "multi-krum", "reputation",
                    "feddyn+anomaly", "feddyn+quarantine", "feddyn+reputation")
CACHE = REPO / "build" / "bench" / "poisoning" / "cells.jsonl"


@dataclass(frozen=True)
class Cell:
    defense: str
    attack: str  # an attack, or "clean"
    seed: int
    heldout: float  # mean of the last LAST rounds
    personal: float  # honest devices' personal accuracy, same rounds
    rejected: int  # updates rejected by the acceptance checks, all rounds
    byzantine_rejected: int  # of them, from Byzantine devices
    curve: tuple[float, ...]
    seconds: float


_HOSTS: dict[Path, Any] = {}  # one HostRound per bundle and worker process


def run_cell(defense: Defense, attack: str, seed: int, rounds: int) -> Cell:
    from fltiny.devices.replay import HostRound

    t0 = time.perf_counter()
    bundle = bundle_for("har-tiny", seed, BASE.export_args)
    if bundle not in _HOSTS:
        _HOSTS[bundle] = HostRound(bundle)
    host = _HOSTS[bundle]
    with tempfile.TemporaryDirectory(prefix="fltiny-poison-") as tmp:
        cfg = SimConfig(
            clients=CLIENTS, strategy=defense.strategy, strategy_options=defense.options,
            data=DataSettings(dataset="hapt", bundle=bundle, partition="natural"),
            server=RoundConfig(rounds=rounds, train=replace(BASE.train, seed=seed),
                               down_topk=BASE.down_topk, down_bits=BASE.down_bits,
                               anomaly_threshold=defense.anomaly_threshold,
                               reputation_threshold=defense.reputation_threshold),
            byzantine=0.0 if attack == CLEAN else BYZANTINE,
            attack=None if attack == CLEAN else attack, out=Path(tmp))
        res = simulate(cfg, host=host)
        rows = [r for r in res.rounds if r["round"] > 0]
        held = [float(r["accuracy"]) for r in rows]
        store = RunStore(res.store)
        try:
            updates = store.updates()
        finally:
            store.close()
    last = rounds - LAST
    personal = [float(u["figures"]["personal_metric"]) for u in updates
                if u["round"] > last and not (u["figures"] or {}).get("byzantine")
                and (u["figures"] or {}).get("personal_metric") is not None]
    rejected = [u for u in updates if not u["accepted"]]
    return Cell(defense.name, attack, seed, float(np.mean(held[-LAST:])),
                float(np.mean(personal)) if personal else float("nan"), len(rejected),
                sum(1 for u in rejected if (u["figures"] or {}).get("byzantine")),
                tuple(held), time.perf_counter() - t0)


def load_cells(path: Path, rounds: int) -> dict[tuple[str, str, int], Cell]:
    """The cells a previous run of the same round count kept in ``path`` (the latest of each)."""
    cells: dict[tuple[str, str, int], Cell] = {}
    if not path.is_file():
        return cells
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.pop("rounds") == rounds:
            c = Cell(**{**row, "curve": tuple(row["curve"])})
            cells[(c.defense, c.attack, c.seed)] = c
    return cells


def summarise(cells: list[Cell], defenses: list[str], attacks: list[str],
              seeds: list[int]) -> list[dict[str, Any]]:
    """Per defense: worst-seed held-out per attack and the largest drop against clean."""
    by = {(c.defense, c.attack, c.seed): c for c in cells}
    out = []
    for d in defenses:
        clean = [by[(d, CLEAN, s)].heldout for s in seeds]
        row: dict[str, Any] = {"defense": d, "what": DEFENSES[d].what,
                               "clean_worst": min(clean), "clean_mean": float(np.mean(clean)),
                               "clean_personal": float(np.mean(
                                   [by[(d, CLEAN, s)].personal for s in seeds])),
                               "attacks": {}}
        for a in attacks:
            acc = [by[(d, a, s)].heldout for s in seeds]
            row["attacks"][a] = {
                "worst": min(acc), "mean": float(np.mean(acc)),
                "max_drop": max(by[(d, CLEAN, s)].heldout - by[(d, a, s)].heldout
                                for s in seeds),
                "personal": float(np.mean([by[(d, a, s)].personal for s in seeds])),
                "byzantine_rejected": sum(by[(d, a, s)].byzantine_rejected for s in seeds),
                "rejected": sum(by[(d, a, s)].rejected for s in seeds),
            }
        row["worst_drop"] = max(v["max_drop"] for v in row["attacks"].values())
        row["worst_attacked"] = min(v["worst"] for v in row["attacks"].values())
        out.append(row)
    return out


def print_table(rows: list[dict[str, Any]], attacks: list[str], reference: float | None) -> None:
    print("\nheld-out accuracy, mean of the last 5 rounds, worst seed (drop against the same "
          "defense's clean run, worst seed, points)")
    head = f"{'defense':<26} {'clean':>6} " + " ".join(f"{a:>17}" for a in attacks)
    print(head + f" {'worst drop':>10}" + (f" {'vs default':>10}" if reference else ""))
    for r in rows:
        cells = " ".join(f"{r['attacks'][a]['worst']:.4f} ({-100 * r['attacks'][a]['max_drop']:+5.1f})"
                         .rjust(17) for a in attacks)
        line = f"{r['defense']:<26} {r['clean_worst']:6.4f} {cells} {100 * r['worst_drop']:10.1f}"
        if reference:
            line += f" {100 * (r['worst_attacked'] - reference):+10.1f}"
        print(line)


def markdown_table(rows: list[dict[str, Any]], attacks: list[str],
                   reference: float | None) -> str:
    """The table of docs/benchmarks.md: worst-seed held-out per attack with its largest drop
    against the same defense's clean run, and the honest devices' personal accuracy."""
    head = ["defense", "clean", *attacks, "worst drop", "worst vs default clean",
            "personal clean / worst attack"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"{r['attacks'][a]['worst']:.4f} ({-100 * r['attacks'][a]['max_drop']:+.1f})"
                 for a in attacks]
        vs = f"{100 * (r['worst_attacked'] - reference):+.1f}" if reference else "-"
        pers = min(r["attacks"][a]["personal"] for a in attacks)
        lines.append(f"| {r['defense']} | {r['clean_worst']:.4f} | " + " | ".join(cells)
                     + f" | {100 * r['worst_drop']:.1f} | {vs} | "
                     f"{r['clean_personal']:.4f} / {pers:.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    ap.add_argument("--attacks", nargs="+", choices=list(ATTACKS),
                    default=[a for a in ATTACKS if a != "silent"],
                    help="default: every attack; 'silent' (the devices send nothing) is the "
                         "reference of a perfect filter, on request")
    ap.add_argument("--defenses", nargs="+", default=list(DEFAULT_DEFENSES),
                    choices=list(DEFENSES))
    ap.add_argument("--cache", type=Path, default=CACHE, help="finished runs, one JSON line "
                    "each: a rerun with the same --rounds reuses them")
    ap.add_argument("--fresh", action="store_true", help="ignore the cache")
    args = ap.parse_args()
    if args.rounds <= LAST:
        raise SystemExit(f"--rounds must be above {LAST} (the table averages the last {LAST})")
    for seed in args.seeds:  # export (or reuse) the bundles before any worker starts
        bundle_for("har-tiny", seed, BASE.export_args)
    wanted = [(d, a, s) for d in args.defenses for a in [CLEAN, *args.attacks]
              for s in args.seeds]
    done = {} if args.fresh else load_cells(args.cache, args.rounds)
    work = [(DEFENSES[d], a, s, args.rounds) for d, a, s in wanted if (d, a, s) not in done]
    print(f"{len(wanted)} runs, {len(wanted) - len(work)} from {args.cache}", flush=True)
    t0 = time.perf_counter()
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_cell, *w) for w in work]
        for i, f in enumerate(as_completed(futures), 1):
            c = f.result()
            done[(c.defense, c.attack, c.seed)] = c
            with args.cache.open("a") as fh:  # kept as it finishes: a rerun resumes
                fh.write(json.dumps({"rounds": args.rounds, **asdict(c)}) + "\n")
            print(f"[{i}/{len(work)}] {c.defense} {c.attack} seed {c.seed}: held-out "
                  f"{c.heldout:.4f}, personal {c.personal:.4f}, rejected {c.rejected} "
                  f"({c.byzantine_rejected} Byzantine), {c.seconds:.0f} s "
                  f"({time.perf_counter() - t0:.0f} s total)", flush=True)
    cells = [done[k] for k in wanted]
    rows = summarise(cells, args.defenses, args.attacks, args.seeds)
    default = next((r for r in rows if r["defense"] == "feddyn"), None)
    print_table(rows, args.attacks, default["clean_worst"] if default else None)
    print("\n" + markdown_table(rows, args.attacks, default["clean_worst"] if default else None))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"command": " ".join(["bench/poisoning.py", *sys.argv[1:]]), "rounds": args.rounds,
           "seeds": args.seeds, "clients": CLIENTS, "byzantine": BYZANTINE,
           "defenses": rows, "cells": [asdict(c) for c in cells],
           "seconds": time.perf_counter() - t0}
    (RESULTS / "poisoning.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'poisoning.json'}")


if __name__ == "__main__":
    main()
