"""Coordinate-wise trimmed mean: drop the ``beta`` fraction largest and smallest values of
each coordinate, average the rest.

Yin, Chen, Ramchandran, Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates".
Needs the (N, n) matrix of every dense delta at once (payload updates are decoded for it), so
it cannot use the batched O(model) accumulation of the mean-based strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, StrategyError, stack


def trimmed_mean(deltas: np.ndarray, beta: float) -> np.ndarray:
    if not 0 <= beta < 0.5:
        raise StrategyError(f"trimmed mean: beta must be in [0, 0.5), got {beta}")
    n = deltas.shape[0]
    cut = int(np.floor(beta * n))
    if n - 2 * cut < 1:
        raise StrategyError(f"trimmed mean: {n} updates leave none after trimming {cut} per side")
    ordered = np.sort(deltas, axis=0)
    return ordered[cut : n - cut].mean(axis=0)


@dataclass
class TrimmedMean(Strategy):
    name: str = "trimmed-mean"
    beta: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.beta < 0.5:
            raise StrategyError(f"trimmed mean: beta must be in [0, 0.5), got {self.beta}")

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        return trimmed_mean(stack(updates), self.beta)
