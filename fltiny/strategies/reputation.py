"""Validation + reputation: each update is validated against the round (its direction and its
norm), each device carries a reputation of how its updates validated in past rounds, and the
aggregate is FedAvg's mean over the updates that pass from devices still trusted.

The server here holds none of the devices' data, so the validation is model-free: the reference
is the round's trimmed mean (Yin et al. 2018) where FLTrust (Cao, Fang, Liu, Gong (2021),
"FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping", NDSS) trains one on
server data, and the reputation is kept across rounds as in reputation-based aggregation (e.g.
Xu, Lyu (2021), "A Reputation Mechanism Is All You Need: Collaborative Fairness and Adversarial
Robustness in Federated Learning"). With D the round's updates d_i of n_i examples:

    c      = trimmed_mean(D, beta)                                   (reference direction)
    pass_i = cos(d_i, c) > min_cosine  and  |d_i| <= max_norm_ratio * median_j |d_j|
    r_i   <- decay * r_i + (1 - decay) * pass_i                      (a new device starts at 1)
    next   = sum_i n_i d_i / sum_i n_i  over i with pass_i and r_i >= trust   (c when none)

Honest updates are averaged as FedAvg does (unclipped, example-weighted), so on a clean fleet
this is FedAvg minus the few honest updates that fail; a flipped or noise update points away
from the reference, a boosted or x10 one is far above the round's median norm, and a device
that keeps failing stays out even in the rounds it passes. The reputation is server state
(``state["reputation"]`` by ``state["reputation_ids"]``), checkpointed with the model.
It is an aggregation rule of its own, beside the aggregator's reputation quarantine
(fltiny.server.reputation, ``--reputation-threshold``: anomaly scores -> quarantine), which
works with any strategy. Measured with 20 % Byzantine devices in docs/benchmarks.md,
"Poisoning".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, StrategyError, stack
from fltiny.strategies.fedavg import weighted_mean
from fltiny.strategies.trimmed_mean import trimmed_mean


def cosines(deltas: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``deltas`` to ``reference`` (0 for a zero row or a zero
    reference)."""
    norms = np.linalg.norm(deltas, axis=1)
    ref = float(np.linalg.norm(reference))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((norms > 0) & (ref > 0), deltas @ reference / (norms * ref), 0.0)


def validate_round(deltas: np.ndarray, reference: np.ndarray, min_cosine: float,
                   max_norm_ratio: float) -> np.ndarray:
    """Which rows pass: cosine to ``reference`` above ``min_cosine`` and L2 norm at most
    ``max_norm_ratio`` times the rows' median norm."""
    norms = np.linalg.norm(deltas, axis=1)
    return (cosines(deltas, reference) > min_cosine) & (
        norms <= max_norm_ratio * float(np.median(norms)))


@dataclass
class Reputation(Strategy):
    name: str = "reputation"
    beta: float = 0.2  # share trimmed per side for the reference direction
    min_cosine: float = 0.0  # an update must point this close to the reference (cosine above)
    max_norm_ratio: float = 3.0  # ... and be at most this many times the round's median norm
    decay: float = 0.8  # weight of the past in the reputation
    trust: float = 0.6  # a device whose reputation is below this is left out

    def __post_init__(self) -> None:
        if not (0 <= self.decay < 1 and 0 <= self.trust <= 1 and -1 <= self.min_cosine < 1
                and self.max_norm_ratio >= 1):
            raise StrategyError(
                f"reputation: needs 0 <= decay < 1, 0 <= trust <= 1, -1 <= min_cosine < 1 and "
                f"max_norm_ratio >= 1, got decay={self.decay}, trust={self.trust}, "
                f"min_cosine={self.min_cosine}, max_norm_ratio={self.max_norm_ratio}")
        trimmed_mean(np.zeros((1, 1)), self.beta)  # beta out of [0, 0.5): StrategyError

    def _known(self) -> dict[int, float]:
        ids = self.state.get("reputation_ids", np.zeros(0, np.int64))
        rep = self.state.get("reputation", np.zeros(0))
        return dict(zip(ids.tolist(), rep.tolist(), strict=True))

    def reputations(self, device_ids: Sequence[int]) -> np.ndarray:
        """The current reputation of each device (1 for one never seen)."""
        known = self._known()
        return np.array([known.get(d, 1.0) for d in device_ids], np.float64)

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        deltas = stack(updates)
        reference = trimmed_mean(deltas, self.beta)
        ids = [u.device_id for u in updates]
        passed = validate_round(deltas, reference, self.min_cosine, self.max_norm_ratio)
        rep = self.decay * self.reputations(ids) + (1 - self.decay) * passed
        known = self._known()
        known.update(zip(ids, rep.tolist(), strict=True))
        order = sorted(known)
        self.state["reputation_ids"] = np.array(order, np.int64)
        self.state["reputation"] = np.array([known[d] for d in order], np.float64)
        keep = passed & (rep >= self.trust)
        if not keep.any():
            return reference
        return weighted_mean(deltas[keep], np.array([u.num_examples for u in updates])[keep])
