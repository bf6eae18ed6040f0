"""fltiny simulate side by side with Flower's simulation engine on the same work.

    .venv/bin/pip install 'flwr[simulation]==1.41.*'     # Flower 1.41 with Ray 2.55
    .venv/bin/python bench/fleet_scale.py --clients 10000 --rounds 2 --fraction 0.1 \\
        --dataset thermostat [--json out.json]

The same devices (``fleet_blobs``: one data blob per device, the split ``fltiny simulate``
uses), the same rounds, the same device round on the firmware's C (``HostRound.run``: local
training, top-k update, payload) and FedAvg weighted by examples. Flower side: a Message-API
``ServerApp`` running Flower's own ``FedAvg`` and a ``ClientApp`` whose train() runs the
device's round for its partition and returns the local model (global + decoded delta), through
``flwr.simulation.run_simulation`` (Ray backend, one CPU per client, two CPUs). fltiny side:
``fltiny.sim.run.simulate`` with ``--strategy fedavg`` (device state, wire accounting, run
store and held-out evaluation every round included). Each side runs in its own process; the
peak memory is the peak of the summed RSS of that process and its children (Ray's raylet,
GCS and workers), sampled every 0.2 s. Client-rounds per second are end to end (start-up
included) and, for the rounds only, from each side's own round timing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from fltiny.bench.procs import run_sampled

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"hapt": "har-tiny", "thermostat": "thermo-small"}


TRAIN_ENV = ("FLTINY_SCALE_BUNDLE", "FLTINY_SCALE_CLIENTS", "FLTINY_SCALE_DATASET",
             "FLTINY_SCALE_PARTITION")


@lru_cache(maxsize=1)
def _world():
    """(HostRound, blobs, payload decoder) of this process, from the environment the parent
    set (a Ray worker builds its own once)."""
    from fltiny.devices.data import fleet_blobs
    from fltiny.devices.replay import HostRound
    from fltiny.native.delta import PayloadDecoder

    bundle = Path(os.environ["FLTINY_SCALE_BUNDLE"])
    n, dataset = int(os.environ["FLTINY_SCALE_CLIENTS"]), os.environ["FLTINY_SCALE_DATASET"]
    host = HostRound(bundle)
    blobs = fleet_blobs(bundle, n, dataset=dataset, scheme=os.environ["FLTINY_SCALE_PARTITION"])
    return host, blobs, PayloadDecoder(host.n_params)


def partition_of(dataset: str, clients: int) -> str:
    """The partition ``fltiny simulate --partition auto`` picks for this fleet."""
    from fltiny.data import load_dataset
    from fltiny.data.registry import fleet_groups
    from fltiny.experiment import choose_partition

    groups = fleet_groups(dataset, clients)
    samples = None if clients <= groups else len(load_dataset(dataset).fleet().y)
    return choose_partition("auto", clients, groups, samples)


def device_round(msg, context):
    """The ClientApp's train(): the device's round on the firmware's C for its partition."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    from fltiny.server.config import TrainParams
    from fltiny.sim.fleet import train_spec

    host, blobs, decoder = _world()
    blob = blobs[int(context.node_config["partition-id"])]
    g = msg.content["arrays"].to_numpy_ndarrays()[0].astype(np.float32)
    rnd = int(msg.content["config"].get("server-round", 1))
    out = host.run(g, blob, train_spec(TrainParams(), rnd, blob.device_id, 0.0))
    local = (g + decoder.decode_dense(out.payload)).astype(np.float32)
    reply = RecordDict({"arrays": ArrayRecord([local]),
                        "metrics": MetricRecord({"num-examples": int(out.examples)})})
    return Message(content=reply, reply_to=msg)


def run_flower(args: argparse.Namespace) -> dict:
    from flwr.app import ArrayRecord
    from flwr.client import ClientApp
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    from fltiny.export.bundle import read_bundle

    _manifest, head, _backbone = read_bundle(args.bundle)
    initial = head.params.astype(np.float32)
    # by reference (``fleet_scale.device_round``, bench/ on PYTHONPATH), not pickled from
    # __main__: each Ray worker then imports this module once and keeps its _world cache
    import fleet_scale

    client_app = ClientApp()
    client_app.train()(fleet_scale.device_round)
    server_app = ServerApp()
    rounds_s: list[float] = []

    @server_app.main()
    def _main(grid, context) -> None:
        strategy = FedAvg(fraction_train=args.fraction, fraction_evaluate=0.0,
                          min_train_nodes=1, min_evaluate_nodes=0,
                          min_available_nodes=args.clients)
        t0 = time.perf_counter()
        strategy.start(grid=grid, initial_arrays=ArrayRecord([initial]),
                       num_rounds=args.rounds)
        rounds_s.append(time.perf_counter() - t0)

    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=args.clients,
                   backend_config={"client_resources": {"num_cpus": 1},
                                   "init_args": {"num_cpus": 2}})
    return {"rounds_seconds": rounds_s[0] if rounds_s else float("nan")}


def run_fltiny(args: argparse.Namespace) -> dict:
    from fltiny.experiment import DataSettings, RoundConfig, SimConfig
    from fltiny.sim.run import simulate

    cfg = SimConfig(clients=args.clients, strategy="fedavg", out=Path("build/bench/fleet_scale"),
                    data=DataSettings(dataset=args.dataset, bundle=args.bundle),
                    server=RoundConfig(rounds=args.rounds, fraction=args.fraction))
    res = simulate(cfg)
    return {"rounds_seconds": sum(m.seconds for m in res.metrics), "final": res.final}


def measure(side: str, args: argparse.Namespace) -> dict:
    """Run one side in its own process; wall time and the peak summed RSS of its tree."""
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "RAY_DEDUP_LOGS": "0",
           "FLTINY_SCALE_BUNDLE": str(args.bundle), "FLTINY_SCALE_CLIENTS": str(args.clients),
           "FLTINY_SCALE_DATASET": args.dataset,
           "FLTINY_SCALE_PARTITION": partition_of(args.dataset, args.clients),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, __file__, "--side", side, "--clients", str(args.clients),
           "--rounds", str(args.rounds), "--fraction", str(args.fraction),
           "--dataset", args.dataset, "--bundle", str(args.bundle)]
    run = run_sampled(cmd, env=env)
    wall, peak, out = run.wall_seconds, run.peak_rss, run.stdout
    result = next((json.loads(line[7:]) for line in out.splitlines()
                   if line.startswith("RESULT ")), None)
    if run.returncode != 0 or result is None:
        raise SystemExit(f"{side} side failed (exit {run.returncode}): {out[-2000:]}")
    client_rounds = int(round(args.fraction * args.clients)) * args.rounds
    return {**result, "wall_seconds": wall, "peak_rss_mib": peak / 2**20,
            "client_rounds": client_rounds,
            "client_rounds_per_s": client_rounds / wall,
            "client_rounds_per_s_rounds_only": client_rounds / result["rounds_seconds"]}


def report(rows: dict, args: argparse.Namespace) -> None:
    print(f"{args.clients} devices ({args.dataset}), {args.rounds} rounds, fraction "
          f"{args.fraction:g}: {rows['fltiny']['client_rounds']} client-rounds per side")
    print("| engine | wall s | client-rounds/s (end to end) | client-rounds/s (rounds) | "
          "peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for side, r in rows.items():
        print(f"| {side} | {r['wall_seconds']:.1f} | {r['client_rounds_per_s']:.0f} | "
              f"{r['client_rounds_per_s_rounds_only']:.0f} | {r['peak_rss_mib']:.0f} |")
    ratio = rows["fltiny"]["client_rounds_per_s"] / rows["flower"]["client_rounds_per_s"]
    ratio_r = (rows["fltiny"]["client_rounds_per_s_rounds_only"]
               / rows["flower"]["client_rounds_per_s_rounds_only"])
    print(f"fltiny / Flower: {ratio:.1f}x end to end, {ratio_r:.1f}x rounds only")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows, "ratio": ratio,
                                         "ratio_rounds": ratio_r}, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--dataset", default="thermostat", choices=tuple(MODELS))
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--side", choices=("flower", "fltiny"), default=None,
                    help=argparse.SUPPRESS)  # internal: run one side in this process
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.bundle is None:  # the zoo model's export, made as `fltiny simulate` makes it
        args.bundle = ROOT / "build" / MODELS[args.dataset]
        if not args.side and not (args.bundle / "manifest.json").exists():
            from fltiny.experiment import export

            export(MODELS[args.dataset], args.dataset, args.bundle)
    if args.side:
        out = run_flower(args) if args.side == "flower" else run_fltiny(args)
        print("RESULT " + json.dumps(out), flush=True)
        return
    rows = {side: measure(side, args) for side in ("fltiny", "flower")}
    report(rows, args)


if __name__ == "__main__":
    main()
