"""Coordinate-wise median of the client deltas (Byzantine-robust).

Yin, Chen, Ramchandran, Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates". Ignores example counts by design.
Needs the (N, n) matrix of every dense delta at once (payload updates are decoded for it), so
it cannot use the batched O(model) accumulation of the mean-based strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, stack


def coordinate_median(deltas: np.ndarray) -> np.ndarray:
    return np.median(deltas, axis=0)


@dataclass
class Median(Strategy):
    name: str = "median"

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        return coordinate_median(stack(updates))
