"""What every strategy sees and returns.

A strategy turns the current global head parameters and the round's accepted client updates
into the next global parameters. Updates are dense float32 deltas (local minus global, as the
device sent them after top-k and int8 quantization, decoded). Strategies are pure apart from
server-optimizer state, which they expose as arrays so the run store can checkpoint it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import StrategyError


@dataclass(frozen=True)
class ClientUpdate:
    device_id: int
    delta: np.ndarray  # float32, same shape as the global parameters
    num_examples: int
    loss: float = float("nan")


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


__all__ = ["ClientUpdate", "Strategy", "StrategyError", "check_updates", "stack"]


def check_updates(global_params: np.ndarray, updates: Sequence[ClientUpdate]) -> None:
    if not updates:
        raise StrategyError("no updates to aggregate")
    for u in updates:
        if u.delta.shape != global_params.shape:
            raise StrategyError(
                f"device {u.device_id} sent a delta of shape {u.delta.shape}, "
                f"the model has {global_params.shape}"
            )
        if not np.all(np.isfinite(u.delta)):
            raise StrategyError(f"device {u.device_id} sent non-finite values")


def stack(updates: Sequence[ClientUpdate]) -> np.ndarray:
    return np.stack([u.delta.astype(np.float64) for u in updates])
