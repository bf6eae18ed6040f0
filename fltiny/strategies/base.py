"""What every strategy sees and returns.

A strategy turns the current global head parameters and the round's accepted client updates
into the next global parameters. Updates are deltas (local minus global, as the device sent
them after top-k and int8 quantization): dense float32 arrays or the device's payload bytes.
The mean-based strategies (FedAvg and its subclasses) sum payloads with one batched C call
(``weighted_sum``: decode, validate and accumulate in float64, O(model) memory); the robust
ones need every update's dense vector at once. Strategies are pure apart from
server-optimizer state, which they expose as arrays so the run store can checkpoint it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import StrategyError


class ClientUpdate:
    """One device's update: a dense float32 delta, or the device's encoded delta payload.

    A payload update (``payload=`` with ``n_params`` and, when the receiver measured it with
    the C accumulator, ``sq_norm``) is never densified on the aggregation path: the
    accumulating strategies hand its bytes straight to the batched C decode-and-accumulate
    (fltiny.native.accumulate). ``delta`` still works for every update (the robust strategies,
    central DP's clipping): for a payload update it is decoded by the C decoder on each access
    and not kept, so N updates never hold N dense copies.
    """

    __slots__ = ("_delta", "_sq_norm", "device_id", "loss", "n_params", "num_examples",
                 "payload")

    def __init__(self, device_id: int, delta: np.ndarray | None = None, num_examples: int = 0,
                 loss: float = float("nan"), *, payload: bytes | None = None,
                 n_params: int | None = None, sq_norm: float | None = None) -> None:
        if (delta is None) == (payload is None):
            raise StrategyError(f"device {device_id}: an update has a dense delta or a payload")
        if payload is not None and (n_params is None or n_params <= 0):
            raise StrategyError(f"device {device_id}: a payload update needs n_params")
        self.device_id = device_id
        self._delta = delta
        self.num_examples = num_examples
        self.loss = loss
        self.payload = payload
        self.n_params = int(n_params) if payload is not None else int(np.size(delta))
        self._sq_norm = sq_norm

    @property
    def delta(self) -> np.ndarray:
        """The dense float32 delta (decoded on each access for a payload update)."""
        if self._delta is not None:
            return self._delta
        from fltiny.native.delta import PayloadDecoder  # the strategies import no C eagerly

        assert self.payload is not None
        return PayloadDecoder(self.n_params).decode_dense(self.payload)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._delta.shape) if self._delta is not None else (self.n_params,)

    def sq_norm(self) -> float:
        """Squared L2 norm of the delta in float64 (measured in C for payload updates)."""
        if self._sq_norm is None:
            d = self.delta.astype(np.float64).reshape(-1)
            self._sq_norm = float(d @ d)
        return self._sq_norm

    def __repr__(self) -> str:
        kind = f"payload of {len(self.payload)} B" if self.payload is not None else "dense"
        return (f"ClientUpdate(device_id={self.device_id}, {kind}, n_params={self.n_params}, "
                f"num_examples={self.num_examples}, loss={self.loss})")


@dataclass
class Strategy:
    """Base class: FedAvg's weighting; subclasses override ``combine`` or ``apply``."""

    name: str = "base"
    server_lr: float = 1.0
    proximal_mu: float = 0.0  # sent to devices in TRAIN (FedProx, FedDyn's alpha); 0 elsewhere
    drift: bool = False  # devices keep a drift-control state (TRAIN flag DRIFT; FedDyn)
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def min_updates(self) -> int:
        """Fewest updates ``combine`` can aggregate (Krum needs more than 2f + 2)."""
        return 1

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        """One aggregate delta from the round's updates."""
        raise NotImplementedError

    def apply(self, global_params: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        """Server step: plain ``w + server_lr * aggregate``; optimizers override."""
        return (global_params + np.float32(self.server_lr) * aggregate).astype(np.float32)

    def aggregate(self, global_params: np.ndarray, updates: Sequence[ClientUpdate]) -> np.ndarray:
        check_updates(global_params, updates)
        return self.apply(global_params, self.combine(updates).astype(np.float32))


__all__ = ["ClientUpdate", "Strategy", "StrategyError", "check_updates", "stack", "weighted_sum"]


def check_updates(global_params: np.ndarray, updates: Sequence[ClientUpdate]) -> None:
    if not updates:
        raise StrategyError("no updates to aggregate")
    for u in updates:
        if u.shape != global_params.shape:
            raise StrategyError(
                f"device {u.device_id} sent a delta of shape {u.shape}, "
                f"the model has {global_params.shape}"
            )
        # payload deltas are finite by the C decoder's rules (checked when they are summed)
        if u.payload is None and not np.all(np.isfinite(u.delta)):
            raise StrategyError(f"device {u.device_id} sent non-finite values")


def stack(updates: Sequence[ClientUpdate]) -> np.ndarray:
    """The (N, n) float64 matrix of the dense deltas (the robust strategies need it)."""
    return np.stack([u.delta.astype(np.float64) for u in updates])


def weighted_sum(updates: Sequence[ClientUpdate],
                 weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """sum_i weights[i] * delta_i in float64 without densifying payload updates: their bytes
    go to one batched C decode-and-accumulate call (fltiny.native.accumulate); dense updates
    are added in numpy. StrategyError names the first payload the C decoder rejects."""
    w = np.asarray(weights, dtype=np.float64)
    n = updates[0].n_params
    packed = [i for i, u in enumerate(updates) if u.payload is not None]
    total = np.zeros(n, np.float64)
    if packed:
        from fltiny.native.accumulate import Accumulator

        acc = Accumulator(n)
        res = acc.add([updates[i].payload for i in packed], w[packed])  # type: ignore[misc]
        bad = np.flatnonzero(~res.ok)
        if bad.size:
            u = updates[packed[int(bad[0])]]
            raise StrategyError(f"device {u.device_id}: payload rejected by the decoder "
                                f"({res.reason(int(bad[0]))})")
        total = acc.sum
    for i, u in enumerate(updates):
        if u.payload is None:
            total += w[i] * u.delta.astype(np.float64).reshape(total.shape)
    return total
