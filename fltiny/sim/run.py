"""``fltiny simulate``: a fleet of N simulated devices on the firmware's C runtime, with the
same experiment builder (bundle, data, strategy, store, evaluator, report) as ``fltiny run``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fltiny.experiment import Experiment, ExperimentResult, SimConfig, choose_partition
from fltiny.server.rounds import RoundMetrics

if TYPE_CHECKING:
    from fltiny.devices.data import DataBlob
    from fltiny.sim.adversary import Adversary

__all__ = ["SimConfig", "adversary", "choose_partition", "simulate"]


def adversary(cfg: SimConfig, exp: Experiment, blobs: Sequence[DataBlob],
              log: Callable[[str], None] = lambda _m: None) -> Adversary | None:
    """The Byzantine devices of ``cfg`` (``--byzantine``, ``--attack``), or None."""
    if cfg.byzantine <= 0 or cfg.attack is None:
        return None
    from fltiny.sim.adversary import Adversary
    from fltiny.sim.byzantine import byzantine_devices

    devices = byzantine_devices([b.device_id for b in blobs], cfg.byzantine, cfg.train.seed)
    log(f"byzantine devices ({cfg.attack}): {', '.join(str(d) for d in sorted(devices))}")
    classes = exp.host.head.n_out if exp.host.manifest.task == "classification" else 0
    return Adversary(cfg.attack, devices, exp.host.n_params, classes=classes,
                     seed=cfg.train.seed)


def simulate(cfg: SimConfig, progress: Callable[[RoundMetrics], None] = lambda _m: None,
             log: Callable[[str], None] = lambda _m: None, host=None) -> ExperimentResult:
    """Run ``cfg.server.rounds`` rounds over ``cfg.clients`` simulated devices; the run store
    in ``cfg.out`` starts afresh. ``host``: a HostRound of the same bundle to reuse."""
    from fltiny.server.gateway import GatewayFleet, split_devices
    from fltiny.sim.fleet import SimFleet
    from fltiny.sim.workers import WorkerFleet, default_workers

    if cfg.attack is not None:  # before any work: an attack the data cannot take
        from fltiny.data import load_dataset
        from fltiny.sim.byzantine import check_attack

        check_attack(cfg.attack, load_dataset(cfg.data.dataset).task)
    exp = Experiment(cfg, cfg.clients, say=log, log=log)
    if host is not None:
        exp.host = host
    blobs = exp.blobs(cfg.max_windows)

    adv = adversary(cfg, exp, blobs, log)

    secagg = None
    if cfg.server.secagg:
        from fltiny.sim.secagg import SecAggFleet

        n = exp.host.n_params
        k = max(1, min(n, round(cfg.train.topk_fraction * n)))  # the plain payload's top-k
        secagg = SecAggFleet(n, k, cfg.server.secagg_clip, cfg.server.secagg_bits,
                             cfg.train.value_bits, cfg.secagg_dropout, cfg.train.seed)
        bits = cfg.server.secagg_bits or "auto"
        log(f"secure aggregation: {k} masked values per device ({bits} bits), clip "
            f"{cfg.server.secagg_clip:g}, dropout after MASKED {cfg.secagg_dropout:g}")

    def sim_fleet(mine: list) -> SimFleet:
        return SimFleet(exp.host, mine, churn=cfg.churn, seed=cfg.train.seed,
                        dense_float=cfg.dense_float, down_topk=cfg.server.down_topk,
                        down_bits=cfg.server.down_bits, adversary=adv, secagg=secagg)

    workers = min(cfg.workers or default_workers(len(blobs)), len(blobs))
    if secagg is not None or adv is not None or cfg.gateways > 1:
        workers = 1  # the cohort's masks, the attackers' view, the gateways: one process
    fleet: Any
    if workers > 1:
        log(f"simulation: {len(blobs)} devices over {workers} worker processes")
        fleet = WorkerFleet(blobs, sim_fleet, workers, churn=cfg.churn, seed=cfg.train.seed)
    elif cfg.gateways > 1:  # gateways one after the other: they share the HostRound's C
        by_id = {b.device_id: b for b in blobs}
        groups = split_devices(list(by_id), cfg.gateways)
        fleet = GatewayFleet([sim_fleet([by_id[i] for i in ids]) for ids in groups],
                             concurrent=False)
    else:
        fleet = sim_fleet(blobs)
    try:
        exp.store_path.unlink(missing_ok=True)
        store = exp.open_store(resume=False)
        try:
            metrics = exp.run_rounds(fleet, store, progress)
            return exp.result(store, metrics)
        finally:
            store.close()
    finally:
        if isinstance(fleet, WorkerFleet):
            fleet.close()
