"""``fltiny simulate``: a fleet of N simulated devices on the firmware's C runtime, with the
same experiment builder (bundle, data, strategy, store, evaluator, report) as ``fltiny run``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fltiny.experiment import Experiment, ExperimentResult, SimConfig, choose_partition
from fltiny.server.rounds import RoundMetrics

__all__ = ["SimConfig", "choose_partition", "simulate"]


def simulate(cfg: SimConfig, progress: Callable[[RoundMetrics], None] = lambda _m: None,
             log: Callable[[str], None] = lambda _m: None, host=None) -> ExperimentResult:
    """Run ``cfg.server.rounds`` rounds over ``cfg.clients`` simulated devices; the run store
    in ``cfg.out`` starts afresh. ``host``: a HostRound of the same bundle to reuse."""
    from fltiny.server.gateway import GatewayFleet, split_devices
    from fltiny.sim.fleet import SimFleet

    exp = Experiment(cfg, cfg.clients, say=log, log=log)
    if host is not None:
        exp.host = host
    blobs = exp.blobs(cfg.max_windows)

    def sim_fleet(mine: list) -> SimFleet:
        return SimFleet(exp.host, mine, churn=cfg.churn, seed=cfg.train.seed,
                        dense_float=cfg.dense_float, down_topk=cfg.server.down_topk,
                        down_bits=cfg.server.down_bits)

    fleet: Any = sim_fleet(blobs)
    if cfg.gateways > 1:  # gateways one after the other: they share the HostRound's C
        by_id = {b.device_id: b for b in blobs}
        groups = split_devices(list(by_id), cfg.gateways)
        fleet = GatewayFleet([sim_fleet([by_id[i] for i in ids]) for ids in groups],
                             concurrent=False)
    exp.store_path.unlink(missing_ok=True)
    store = exp.open_store(resume=False)
    try:
        metrics = exp.run_rounds(fleet, store, progress)
        return exp.result(store, metrics)
    finally:
        store.close()
