"""Fleet learning: does the federated model beat the factory model, on new users (held-out) and
on each device's own future data (personal), on every factory seed?

    .venv/bin/python bench/fleet_learning.py [--seeds 0 1 2] [--rounds 30] [--datasets hapt thermostat]
                                             [--configs old new new-dense ...] [--no-target]

On the firmware's C (``fltiny simulate``'s fleet: every round is flt_round_run, the bytes a board
sends), natural partition, every fleet user on a device of its own (HAPT: users 11-25; thermostat:
homes 11-35), for each factory seed S a bundle exported with ``fltiny export --seed S`` (cached in
build/bench/fleet/). Per configuration and seed: the factory model's held-out metric and the
devices' personal metric (round 1: every device serves the factory model), the mean of the last
five rounds of both (held-out: the global model on the held-out users; personal: the mean over
devices of each device's served model on its personal test split, the last 30 % of its windows in
time order, measured on the device before it trains), the worst device's change of its personal
metric (mean of its last five rounds minus its factory value), the lowest held-out metric after
round 5, and the DELTA payload bytes per device-round. With --target (default) the on-device
figures for har-tiny on qemu-m4f: static RAM of the device firmware (linked ELF) and guest
instructions of one round's work on a fleet device (the benchmark firmware's markers under QEMU:
training per sample-epoch x epochs x training windows + one inference per personal test window
+ delta and payload). Prints tables and writes bench/results/fleet_learning.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.experiment import DataSettings, RoundConfig, SimConfig, TrainParams  # noqa: E402
from fltiny.server.store import RunStore  # noqa: E402
from fltiny.sim.run import simulate  # noqa: E402

RESULTS = REPO / "bench" / "results"
BUNDLES = REPO / "build" / "bench" / "fleet"
MODELS = {"hapt": "har-tiny", "thermostat": "thermo-small"}
LAST = 5  # rounds averaged at the end


@dataclass(frozen=True)
class Config:
    name: str
    what: str
    strategy: str
    train: TrainParams
    dense_float: bool = False
    down_topk: float = RoundConfig().down_topk  # share of the parameters in a GLOBAL delta
    down_bits: int = RoundConfig().down_bits  # width of its values
    export_args: tuple[str, ...] = ()  # extra `fltiny export` options of its bundle (HAPT)
    model: str | None = None  # the HAPT model (None: MODELS["hapt"])
    board: str = "qemu-m4f"  # the board of its on-device figures


NEW_TRAIN = TrainParams()  # the defaults: what `fltiny run` / `fltiny simulate` use
HEAD_ONLY = ("--train-convs", "0")
TAIL = ("--train-convs", "1")
CONFIGS = {
    "old": Config("old", "head only (374 parameters), FedAvg, lr 0.002, 2 epochs, top-5 % int8, "
                  "dense int8 GLOBAL deltas, no personalization: the first defaults", "fedavg",
                  TrainParams(learning_rate=0.002, epochs=2, topk_fraction=0.05,
                              personal=False, value_bits=8),
                  down_topk=1.0, down_bits=8, export_args=HEAD_ONLY),
    "head-new": Config("head-new", "head only with the new settings (FedDyn, lr 0.002, 5 "
                       "epochs, top-10 % 4-bit, personalization)", "feddyn", NEW_TRAIN,
                       export_args=HEAD_ONLY),
    "new": Config("new", "the defaults: float tail (last conv + head, 1,030 parameters), "
                  "FedDyn, lr 0.002, 5 epochs, top-10 % 4-bit updates, top-25 % 4-bit GLOBAL "
                  "deltas, personalization", "feddyn", NEW_TRAIN, export_args=TAIL),
    "new-select": Config("new-select", "the defaults, each device serving the better of its "
                         "local and the global model on a validation split (--select-served)",
                         "feddyn", replace(NEW_TRAIN, select_served=True), export_args=TAIL),
    "new-dense": Config("new-dense", "the defaults with dense float32 updates", "feddyn",
                        NEW_TRAIN, dense_float=True, export_args=TAIL),
    "new-8bit": Config("new-8bit", "the defaults with int8 values both ways", "feddyn",
                       replace(NEW_TRAIN, value_bits=8), down_bits=8, export_args=TAIL),
    "new-small": Config("new-small", "the defaults on har-small (float tail: last conv + "
                        "head, 6,406 parameters) for boards with 512 kB of RAM (qemu-m7)",
                        "feddyn", NEW_TRAIN, export_args=TAIL, model="har-small",
                        board="qemu-m7"),
    "new-down100": Config("new-down100", "the defaults with dense GLOBAL deltas (every "
                          "parameter)", "feddyn", NEW_TRAIN, down_topk=1.0, export_args=TAIL),
    "new-down10": Config("new-down10", "the defaults with top-10 % GLOBAL deltas", "feddyn",
                         NEW_TRAIN, down_topk=0.1, export_args=TAIL),
}
DEFAULT_CONFIGS = ("old", "head-new", "new", "new-dense", "new-8bit")


@dataclass
class SeedResult:
    seed: int
    factory_heldout: float
    factory_personal: float
    heldout: float
    personal: float
    worst_device_change: float
    min_heldout_after_5: float
    bytes_up: float
    bytes_down: float
    curve_heldout: list[float] = field(default_factory=list)
    curve_personal: list[float] = field(default_factory=list)


def bundle_for(model: str, seed: int, export_args: tuple[str, ...]) -> Path:
    tag = "-".join(a.strip("-") for a in export_args)
    out = BUNDLES / f"{model}-s{seed}{'-' + tag if tag else ''}"
    if not (out / "manifest.json").is_file():
        print(f"  exporting {model} with factory seed {seed} -> {out}", flush=True)
        done = subprocess.run([sys.executable, "-m", "fltiny.cli", "export", "--model", model,
                               "--seed", str(seed), "--out", str(out), *export_args],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"fltiny export failed: {done.stderr.strip()[-400:]}")
    return out


def run_one(cfg: Config, dataset: str, bundle: Path, rounds: int, seed: int) -> SeedResult:
    with tempfile.TemporaryDirectory(prefix="fltiny-fleet-") as tmp:
        sc = SimConfig(clients=15 if dataset == "hapt" else 25, strategy=cfg.strategy,
                       data=DataSettings(dataset=dataset, bundle=bundle, partition="natural"),
                       server=RoundConfig(rounds=rounds, train=cfg.train,
                                          down_topk=cfg.down_topk, down_bits=cfg.down_bits),
                       dense_float=cfg.dense_float, out=Path(tmp))
        res = simulate(sc)
        rows = [r for r in res.rounds if r["round"] > 0]
        key = "accuracy" if "accuracy" in res.rounds[0] else "mae"
        held = [float(r[key]) for r in rows]
        pers = [float(r[f"personal_{key}"]) for r in rows]
        per_dev: dict[int, list[float]] = {}
        store = RunStore(res.store)
        try:
            for u in sorted(store.updates(), key=lambda u: u["round"]):
                pm = (u["figures"] or {}).get("personal_metric")
                if pm is not None:
                    per_dev.setdefault(u["device_id"], []).append(float(pm))
        finally:
            store.close()
        sign = 1.0 if key == "accuracy" else -1.0  # a change for the better is positive
        worst = min(sign * (float(np.mean(v[-LAST:])) - v[0]) for v in per_dev.values())
        # wire bytes per device-round (frames and ACKs), steady state: after round 1
        up = np.mean([r["bytes_up"] / max(1, r["participants"]) for r in rows[1:] or rows])
        down = np.mean([r["bytes_down"] / max(1, r["participants"]) for r in rows[1:] or rows])
        return SeedResult(seed, float(res.rounds[0][key]), pers[0], float(np.mean(held[-LAST:])),
                          float(np.mean(pers[-LAST:])), worst,
                          (min if key == "accuracy" else max)(held[5:] or held),
                          float(up), float(down), held, pers)


def model_of(cfg: Config, dataset: str) -> str:
    return cfg.model if dataset == "hapt" and cfg.model else MODELS[dataset]


def target_figures(bundle: Path, board_name: str, train: TrainParams, n_train: int,
                   n_test: int) -> dict:
    """Device RAM (linked ELF) and instructions of one round on a board (see the docstring)."""
    from fltiny.bench.memory import elf_memory
    from fltiny.bench.ontarget import DELTA, INFER, TRAIN, bench_blob, bench_firmware, run_bench
    from fltiny.boards import get_board
    from fltiny.build.firmware import build_firmware

    board = get_board(board_name)
    with tempfile.TemporaryDirectory(prefix="fltiny-fleet-fw-") as tmp:
        dev = build_firmware(board, bundle, Path(tmp) / "device")
        mem = elf_memory(dev.elf)
        fw = bench_firmware(board, bundle, Path(tmp) / "bench")
        n = 64
        run = run_bench(board, fw.elf, bench_blob(bundle, n))
    per_sample_epoch = run.net(TRAIN) / run.n
    insns = (per_sample_epoch * train.epochs * n_train + run.net(INFER) * n_test
             + run.net(DELTA))
    return {"board": board.name, "static_ram": mem.static_ram, "flash": mem.flash,
            "train_per_sample_epoch": per_sample_epoch, "infer": run.net(INFER),
            "delta": run.net(DELTA), "round_insns": insns, "n_train": n_train, "n_test": n_test,
            "epochs": train.epochs}


def summarise(name: str, rs: list[SeedResult], key: str) -> dict:
    better = (lambda a, b: a - b) if key == "accuracy" else (lambda a, b: (b - a) / b)
    return {
        "config": name,
        "heldout_mean": float(np.mean([r.heldout for r in rs])),
        "heldout_gain_min": float(min(better(r.heldout, r.factory_heldout) for r in rs)),
        "personal_mean": float(np.mean([r.personal for r in rs])),
        "personal_gain_min": float(min(better(r.personal, r.factory_personal) for r in rs)),
        "worst_device_change_min": float(min(r.worst_device_change for r in rs)),
        "min_heldout_after_5_vs_factory": float(min(better(r.min_heldout_after_5,
                                                           r.factory_heldout) for r in rs)),
        "bytes_up": float(np.mean([r.bytes_up for r in rs])),
        "bytes_down": float(np.mean([r.bytes_down for r in rs])),
        "seeds": [r.__dict__ for r in rs],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--datasets", nargs="+", default=["hapt", "thermostat"],
                    choices=sorted(MODELS))
    ap.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--target", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure RAM and instructions on the target (old, new: har-tiny on "
                    "qemu-m4f; new-small: har-small on qemu-m7)")
    ap.add_argument("--json", default="fleet_learning.json",
                    help="results file name under bench/results/")
    args = ap.parse_args()
    out: dict = {"command": " ".join(["bench/fleet_learning.py", *sys.argv[1:]]),
                 "rounds": args.rounds, "seeds": args.seeds, "datasets": {}}
    for dataset in args.datasets:
        model = MODELS[dataset]
        key = "accuracy" if dataset == "hapt" else "mae"
        table = []
        for name in args.configs:
            cfg = CONFIGS[name]
            rs = []
            for seed in args.seeds:
                t0 = time.perf_counter()
                b = bundle_for(model_of(cfg, dataset), seed,
                               cfg.export_args if dataset == "hapt" else ())
                r = run_one(cfg, dataset, b, args.rounds, seed)
                rs.append(r)
                print(f"{dataset} {name} seed {seed}: held-out {key} {r.factory_heldout:.4f} -> "
                      f"{r.heldout:.4f}, personal {r.factory_personal:.4f} -> {r.personal:.4f} "
                      f"(worst device {r.worst_device_change:+.4f}), {r.bytes_up:.0f} B up, "
                      f"{r.bytes_down:.0f} B down, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            s = summarise(name, rs, key)
            s["what"] = cfg.what
            if args.target and dataset == "hapt" and name in ("old", "new", "new-small"):
                b = bundle_for(model_of(cfg, dataset), args.seeds[0], cfg.export_args)
                from fltiny.devices.data import fleet_blobs

                blobs = fleet_blobs(b, 15)
                s["target"] = target_figures(b, cfg.board, cfg.train,
                                             int(np.mean([x.n_train for x in blobs])),
                                             int(np.mean([x.n_test for x in blobs])))
            table.append(s)
        out["datasets"][dataset] = {"model": model, "metric": key, "configs": table}
        unit = "points" if key == "accuracy" else "relative"
        print(f"\n{dataset} ({model}), {len(args.seeds)} factory seeds, mean of rounds "
              f"{args.rounds - LAST + 1}-{args.rounds}; gains in {unit}, worst over seeds")
        print(f"{'config':<10} {'held-out':>9} {'min gain':>9} {'personal':>9} {'min gain':>9} "
              f"{'worst dev':>9} {'dip>r5':>8} {'B up':>6} {'RAM B':>7} {'insns/round':>12}")
        for s in table:
            scale = 100.0 if key == "accuracy" else 100.0
            t = s.get("target", {})
            print(f"{s['config']:<10} {s['heldout_mean']:9.4f} {scale * s['heldout_gain_min']:+9.1f} "
                  f"{s['personal_mean']:9.4f} {scale * s['personal_gain_min']:+9.1f} "
                  f"{scale * s['worst_device_change_min']:+9.1f} "
                  f"{scale * s['min_heldout_after_5_vs_factory']:+8.1f} {s['bytes_up']:6.0f} "
                  f"{t.get('static_ram', '-'):>7} "
                  + (f"{t['round_insns']:12,.0f}" if t else f"{'-':>12}"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / args.json}")


if __name__ == "__main__":
    main()
