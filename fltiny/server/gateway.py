"""Gateways: hierarchical aggregation, each gateway pre-aggregating its own devices exactly.

A gateway bridge drives its devices (verification and replay of every DELTA as a flat run
does: fltiny.bridge.fleet), validates their updates (fltiny.server.validate), and forwards one
``GatewaySum`` upstream: the example-weighted sum of its accepted devices' decoded sparse
deltas, sum_i n_i * d_i, and their example count, sum_i n_i, both exact where they can be
(float64; n_i * d_i of a float32 d_i and an integer n_i < 2^29 is exact in float64). The top
level divides the sum of the gateways' sums by the sum of their counts: the FedAvg mean of a
flat run,

    d = sum_g S_g / sum_g N_g  =  sum_i n_i d_i / sum_i n_i,

equal up to the order of the float64 additions (flat: device by device; gateways: within each
gateway, then across gateways), i.e. within float64 rounding (a relative 1e-16 per addition),
far below the float32 the model is kept in. The strategy's server step (FedAvgM's momentum,
FedAdam, FedDyn's h) is then applied to that mean, as in a flat run.

Refused with gateways (``check_gateway_settings``):
- strategies that need every device's own update (median, trimmed mean, Krum, multi-Krum): a
  gateway's sum hides them;
- central DP (--dp-clip): DP-FedAvg clips each device's update before summing; at the top
  level there are only sums.
On one machine the gateways run in the host process (``GatewayFleet``: G bridges over their
own boards, concurrently); ``GatewaySum`` is the only thing the top level aggregates
(``apply_sums``). A fleet whose gateways are elsewhere (fltiny.flower: one Flower SuperNode
per gateway) gives the round loop their forwarded sums through ``gateway_sums``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from fltiny.errors import StrategyError, UsageError
from fltiny.server.config import TrainParams
from fltiny.strategies.base import ClientUpdate, Strategy, check_updates, weighted_sum

# strategies that combine into the example-weighted mean (FedAvg and its subclasses' combine)
MEAN_STRATEGIES = ("fedavg", "fedprox", "fedavgm", "fedadam", "feddyn")


def check_gateway_settings(gateways: int, strategy: str, private: bool) -> None:
    """UsageError (one line, what to do) for settings gateways cannot aggregate exactly."""
    if gateways <= 1:
        return
    if strategy not in MEAN_STRATEGIES:
        raise UsageError(f"--gateways {gateways}: {strategy} needs every device's own update, "
                         "which a gateway's pre-aggregated sum hides; use --strategy "
                         f"{', '.join(MEAN_STRATEGIES)}, or run without --gateways")
    if private:
        raise UsageError(f"--gateways {gateways}: central DP (--dp-clip) clips each device's "
                         "update before summing, and the top level only sees gateway sums; "
                         "run DP without --gateways")


@dataclass(frozen=True)
class GatewaySum:
    """What a gateway forwards upstream for one round."""

    gateway: int
    weighted_sum: np.ndarray  # float64 [P]: sum_i n_i * d_i over its accepted devices
    examples: int  # sum_i n_i
    devices: tuple[int, ...]  # the devices in the sum


def pre_aggregate(gateway: int, updates: Sequence[ClientUpdate]) -> GatewaySum:
    """A gateway's exact pre-aggregate of its accepted updates (float64 sums)."""
    # payload updates go through the batched C decode-and-accumulate (weighted_sum)
    total = (weighted_sum(updates, [u.num_examples for u in updates]) if updates
             else np.zeros(0, np.float64))
    return GatewaySum(gateway, total, int(sum(u.num_examples for u in updates)),
                      tuple(u.device_id for u in updates))


def combined_mean(sums: Sequence[GatewaySum]) -> np.ndarray:
    """The FedAvg mean delta (float64) of the gateways' sums."""
    examples = sum(s.examples for s in sums)
    if examples <= 0:
        raise StrategyError("example counts must be non-negative with a positive sum")
    total = np.zeros_like(sums[0].weighted_sum)
    for s in sums:
        total += s.weighted_sum
    return total / np.float64(examples)


def group_by_gateway(updates: Sequence[ClientUpdate],
                     gateway_of: Callable[[int], int]) -> dict[int, list[ClientUpdate]]:
    """The updates of each gateway, in their order (gateways in id order)."""
    by_gateway: dict[int, list[ClientUpdate]] = {}
    for u in updates:
        by_gateway.setdefault(gateway_of(u.device_id), []).append(u)
    return {g: by_gateway[g] for g in sorted(by_gateway)}


def apply_sums(strategy: Strategy, global_params: np.ndarray,
               sums: Sequence[GatewaySum]) -> np.ndarray:
    """The next global model from the gateways' sums: the strategy's server step on
    ``combined_mean`` (the one top-level aggregation, in-process gateways and Flower alike)."""
    if strategy.name not in MEAN_STRATEGIES:
        raise StrategyError(f"{strategy.name} cannot aggregate gateway sums")
    for s in sums:
        if s.weighted_sum.shape != (global_params.size,):
            raise StrategyError(f"gateway {s.gateway}: a sum of {s.weighted_sum.size} "
                                f"parameters, the model has {global_params.size}")
    return strategy.apply(global_params, combined_mean(sums).astype(np.float32))


def aggregate_gateways(strategy: Strategy, global_params: np.ndarray,
                       updates: Sequence[ClientUpdate],
                       gateway_of: Callable[[int], int]) -> np.ndarray:
    """The next global model from the round's accepted updates through their gateways: each
    gateway's ``pre_aggregate``, then the strategy's server step on ``combined_mean``."""
    if strategy.name not in MEAN_STRATEGIES:
        raise StrategyError(f"{strategy.name} cannot aggregate gateway sums")
    check_updates(global_params, updates)
    sums = [pre_aggregate(g, ups) for g, ups in group_by_gateway(updates, gateway_of).items()]
    return apply_sums(strategy, global_params, sums)


def split_devices(device_ids: Sequence[int], gateways: int) -> list[list[int]]:
    """Devices dealt into ``gateways`` contiguous groups of (nearly) equal size, in id order:
    gateway g gets the g-th block (a plant floor's gateway serves the sensors near it)."""
    ids = sorted(device_ids)
    if not 1 <= gateways <= len(ids):
        raise UsageError(f"--gateways {gateways}: need 1..{len(ids)} gateways for "
                         f"{len(ids)} devices")
    return [part.tolist() for part in np.array_split(np.asarray(ids, dtype=np.int64), gateways)]


class GatewayFleet:
    """``Fleet`` of G gateway bridges (each a Fleet over its own devices), run concurrently;
    ``gateway_of`` tells the round loop which gateway pre-aggregates a device's update. Each
    device's result carries its gateway in ``figures["gateway"]``."""

    def __init__(self, gateways: Sequence, concurrent: bool = True) -> None:
        self.gateways = list(gateways)
        self.concurrent = concurrent  # False: one gateway after the other (simulated fleets
        self._of: dict[int, int] = {}  # share one HostRound, whose C keeps static buffers)

    def gateway_of(self, device_id: int) -> int:
        return self._of[device_id]

    def host_state(self) -> dict:
        """Every gateway's per-device host state (fltiny.server.rounds.host_state)."""
        out: dict = {}
        for fleet in self.gateways:
            get = getattr(fleet, "host_state", None)
            out.update(get() if get is not None else {})
        return out

    def devices(self) -> list[int]:
        out: list[int] = []
        for g, fleet in enumerate(self.gateways):
            for d in fleet.devices():
                self._of[d] = g
                out.append(d)
        return sorted(out)

    def run_round(self, round_: int, devices: Sequence[int], global_params: np.ndarray,
                  version: int, train: TrainParams, mu: float, deadline_s: float) -> list:
        mine: list[list[int]] = [[] for _ in self.gateways]
        for d in devices:
            mine[self._of[d]].append(d)
        with ThreadPoolExecutor(max_workers=len(self.gateways) if self.concurrent else 1,
                                thread_name_prefix="fltiny-gw") as ex:
            futures = [ex.submit(f.run_round, round_, ds, global_params, version, train, mu,
                                 deadline_s)
                       for f, ds in zip(self.gateways, mine, strict=True) if ds]
            per_gateway = [f.result() for f in futures]
        return sorted((replace(r, figures={**r.figures, "gateway": self._of[r.device_id]})
                       for results in per_gateway for r in results), key=lambda r: r.device_id)
