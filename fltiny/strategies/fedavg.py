"""FedAvg: the example-weighted mean of the client deltas.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas (2017), "Communication-Efficient Learning of
Deep Networks from Decentralized Data". next = w + sum_i n_i * d_i / sum_i n_i.
The sum accumulates (``weighted_sum``): payload updates are decoded and added in one batched C
call, in float64, in O(model) memory; FedProx, FedAvgM, FedAdam and FedDyn inherit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, StrategyError, weighted_sum


def weighted_mean(deltas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise StrategyError("example counts must be non-negative with a positive sum")
    return (weights[:, None] * deltas).sum(axis=0) / weights.sum()


@dataclass
class FedAvg(Strategy):
    name: str = "fedavg"

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        weights = np.array([u.num_examples for u in updates], dtype=np.float64)
        if np.any(weights < 0) or weights.sum() <= 0:
            raise StrategyError("example counts must be non-negative with a positive sum")
        return weighted_sum(updates, weights) / weights.sum()


__all__ = ["FedAvg", "weighted_mean"]
