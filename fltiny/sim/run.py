"""``fltiny simulate``: a fleet of N simulated devices on the firmware's C runtime, with the
same aggregator, strategies and run store as ``fltiny run``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fltiny.devices.data import fleet_blobs
from fltiny.devices.replay import HostRound
from fltiny.errors import UsageError
from fltiny.run.evaluate import HoldoutEvaluator
from fltiny.server.rounds import RoundConfig, RoundMetrics, TrainParams, run_rounds
from fltiny.server.store import RunStore
from fltiny.sim.fleet import SimFleet
from fltiny.strategies import make_strategy


@dataclass(frozen=True)
class SimConfig:
    clients: int = 15
    rounds: int = 10
    partition: str = "auto"  # natural when there are enough groups, else iid
    alpha: float = 0.5
    churn: float = 0.0
    strategy: str = "fedavg"
    fraction: float = 1.0
    seed: int = 0
    max_windows: int | None = None
    dense_float: bool = False
    train: TrainParams = TrainParams()


@dataclass
class SimResult:
    metrics: list[RoundMetrics]
    initial: dict[str, float]
    store: Path
    seconds: float
    partition: str


def choose_partition(requested: str, clients: int, fleet_groups: int) -> str:
    if requested != "auto":
        if requested == "natural" and clients > fleet_groups:
            raise UsageError(f"natural partition has {fleet_groups} fleet devices (one per user); "
                             f"asked for {clients}: use --partition iid or dirichlet")
        return requested
    return "natural" if clients <= fleet_groups else "iid"


def simulate(bundle: Path, dataset: str, cfg: SimConfig, out: Path,
             progress: Callable[[RoundMetrics], None] = lambda _m: None,
             log: Callable[[str], None] = lambda _m: None,
             host: HostRound | None = None) -> SimResult:
    from fltiny.data import load_dataset

    ds = load_dataset(dataset)
    partition = choose_partition(cfg.partition, cfg.clients, len(ds.scenario.fleet))
    log(f"{cfg.clients} devices, {partition} partition of the {dataset} fleet data")
    host = host or HostRound(bundle)
    blobs = fleet_blobs(bundle, cfg.clients, dataset=dataset, scheme=partition, alpha=cfg.alpha,
                        seed=cfg.seed, max_windows=cfg.max_windows)
    fleet = SimFleet(host, blobs, churn=cfg.churn, seed=cfg.seed, dense_float=cfg.dense_float)
    evaluate = HoldoutEvaluator.for_dataset(host, dataset)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "run.sqlite"
    db.unlink(missing_ok=True)
    store = RunStore(db)
    strategy = make_strategy(cfg.strategy)
    rounds = RoundConfig(rounds=cfg.rounds, fraction=cfg.fraction, seed=cfg.seed, train=cfg.train)
    t0 = time.perf_counter()
    initial = evaluate(host.head.params)
    metrics = run_rounds(fleet, strategy, store, rounds, host.head.params.astype(np.float32),
                         evaluate, progress, log)
    store.close()
    return SimResult(metrics, initial, db, time.perf_counter() - t0, partition)
