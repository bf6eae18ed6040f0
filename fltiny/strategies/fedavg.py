"""FedAvg: the example-weighted mean of the client deltas.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas (2017), "Communication-Efficient Learning of
Deep Networks from Decentralized Data". next = w + sum_i n_i * d_i / sum_i n_i.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, StrategyError, stack


def weighted_mean(deltas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise StrategyError("example counts must be non-negative with a positive sum")
    return (weights[:, None] * deltas).sum(axis=0) / weights.sum()


@dataclass
class FedAvg(Strategy):
    name: str = "fedavg"

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        return weighted_mean(stack(updates), np.array([u.num_examples for u in updates]))
