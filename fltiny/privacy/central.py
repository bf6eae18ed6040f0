"""Central differential privacy at the aggregator: DP-FedAvg (McMahan et al. 2018).

Each round, every available device takes part with probability q (Poisson sampling,
``poisson_sample``). Each accepted update delta_k (local minus global, as decoded) is clipped to
L2 norm C: delta_k * min(1, C / |delta_k|). The aggregate is the fixed-denominator estimate

    d = (sum_k clip(delta_k) + N(0, (z * C)^2 I)) / (q * N)

with N the devices available and z the noise multiplier: replacing one device's data changes
the sum by at most C, so the released d (and every model after it, post-processing) is
(epsilon, delta)-DP at the device (user) level; fltiny.privacy.accountant gives epsilon. Every
device weighs the same (example counts would leak). The strategy's server step (FedAvg's
w + d, FedAvgM, FedAdam, FedDyn's drift correction) runs on d unchanged. Strategies that select
or sort individual updates (Krum, median, trimmed mean) are not covered by this mechanism and
are refused.

The noise comes from the operating system's randomness (``numpy.random.default_rng()``), so a
private run cannot be repeated bit for bit and the run store holds no seed that would remove
it; tests pass their own generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import UsageError
from fltiny.strategies.base import ClientUpdate, Strategy, check_updates

MEAN_BASED = ("fedavg", "fedprox", "fedavgm", "fedadam", "feddyn")


def clip(delta: np.ndarray, c: float) -> np.ndarray:
    """delta * min(1, c / |delta|) in float64."""
    d = delta.astype(np.float64)
    norm = float(np.linalg.norm(d))
    return d * (c / norm) if norm > c else d


def poisson_sample(available: Sequence[int], q: float, rng: np.random.Generator) -> list[int]:
    """Each device independently with probability q (the sampling the accountant assumes)."""
    ids = sorted(available)
    keep = rng.random(len(ids)) < q
    return [d for d, k in zip(ids, keep, strict=True) if k]


def check_strategy_name(name: str) -> None:
    if name not in MEAN_BASED:
        raise UsageError(f"central DP (--dp-clip) works with the mean-based strategies "
                         f"({', '.join(MEAN_BASED)}); {name} picks or sorts individual "
                         "updates, which the Gaussian mechanism does not cover")


@dataclass
class CentralDP:
    clip: float  # C
    noise: float  # z
    q: float  # sampling rate
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    @staticmethod
    def check_strategy(strategy: Strategy) -> None:
        check_strategy_name(strategy.name)

    def combine(self, updates: Sequence[ClientUpdate], available: int) -> np.ndarray:
        """The noisy clipped mean d of the contract (float32)."""
        total = np.zeros(updates[0].delta.shape, np.float64)
        for u in updates:
            total += clip(u.delta, self.clip)
        total += self.rng.normal(0.0, self.noise * self.clip, total.shape)
        return (total / (self.q * available)).astype(np.float32)

    def aggregate(self, strategy: Strategy, global_params: np.ndarray,
                  updates: Sequence[ClientUpdate], available: int) -> np.ndarray:
        """The strategy's server step on the noisy aggregate."""
        check_updates(global_params, updates)
        return strategy.apply(global_params, self.combine(updates, available))
