"""Krum and Multi-Krum: pick the update(s) closest to their n - f - 2 nearest neighbours.

Blanchard, El Mhamdi, Guerraoui, Stainer (2017), "Machine Learning with Adversaries:
Byzantine Tolerant Gradient Descent". score(i) = sum of squared distances from d_i to its
n - f - 2 nearest other updates; Krum returns the lowest-scoring update, Multi-Krum the mean of
the ``m`` lowest. Needs n > 2f + 2.
Needs the (N, n) matrix of every dense delta at once (payload updates are decoded for it), so
it cannot use the batched O(model) accumulation of the mean-based strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, StrategyError, stack


def krum_scores(deltas: np.ndarray, f: int) -> np.ndarray:
    n = deltas.shape[0]
    if f < 0:
        raise StrategyError(f"krum: f (tolerated Byzantine devices) must be >= 0, got {f}")
    if n <= 2 * f + 2:
        raise StrategyError(f"krum needs more than 2f + 2 = {2 * f + 2} updates, got {n}; "
                            "use more devices per round or --strategy median")
    sq = (deltas**2).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * deltas @ deltas.T, 0.0)
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, : n - f - 2]
    return nearest.sum(axis=1)


def multi_krum(deltas: np.ndarray, f: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the m best updates, their indices, best first; ties to the lower index)."""
    if not 1 <= m <= deltas.shape[0]:
        raise StrategyError(f"multi-krum: m must be in 1..{deltas.shape[0]}, got {m}")
    chosen = np.argsort(krum_scores(deltas, f), kind="stable")[:m]
    return deltas[chosen].mean(axis=0), chosen


@dataclass
class Krum(Strategy):
    """Krum (m = 1) or Multi-Krum (m > 1), tolerating ``f`` Byzantine devices."""

    name: str = "krum"
    f: int = 1
    m: int = 1

    def __post_init__(self) -> None:
        if self.f < 0 or self.m < 1:
            raise StrategyError(f"{self.name}: needs f >= 0 and m >= 1, got f={self.f}, m={self.m}")

    def min_updates(self) -> int:
        return 2 * self.f + 3

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        return multi_krum(stack(updates), self.f, min(self.m, len(updates)))[0]
