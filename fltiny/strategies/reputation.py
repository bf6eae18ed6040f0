"""Validation + reputation: each update is checked against the round (its direction and its
norm), and each device carries a reputation of how its updates checked out in past rounds.

A trust score in the manner of FLTrust (Cao, Fang, Liu, Gong (2021), "FLTrust: Byzantine-robust
Federated Learning via Trust Bootstrapping", NDSS), with the round's trimmed mean as the
reference direction where FLTrust trains one on server data (the server here holds none of the
devices' data), and a reputation kept across rounds as in reputation-based aggregation
(e.g. Xu, Lyu (2021), "A Reputation Mechanism Is All You Need: Collaborative Fairness and
Adversarial Robustness in Federated Learning"). With D the round's updates d_i:

    c     = trimmed_mean(D, beta)                         (robust reference direction)
    s_i   = max(0, cos(d_i, c))                           (this round's score)
    r_i  <- decay * r_i + (1 - decay) * s_i               (reputation; a new device starts at prior)
    d_i' = d_i * min(1, median_j |d_j| / |d_i|)           (norm bounded by the round's median)
    next  = sum_i w_i d_i' / sum_i w_i,  w_i = r_i if r_i >= floor * median_j r_j else 0

(the reference c itself when every weight is 0). A flipped, noisy or boosted update scores low
or is cut to an honest norm; a device that keeps sending them loses its weight. Example counts
are not used: a device reports its own, so a hostile one could inflate it. The reputation is
server state (``state["reputation"]`` by ``state["reputation_ids"]``) and is checkpointed with
the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy, StrategyError, stack
from fltiny.strategies.trimmed_mean import trimmed_mean


def trust_scores(deltas: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """max(0, cosine similarity) of each row of ``deltas`` to ``reference`` (0 for a zero row
    or a zero reference)."""
    norms = np.linalg.norm(deltas, axis=1)
    ref = float(np.linalg.norm(reference))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((norms > 0) & (ref > 0), deltas @ reference / (norms * ref), 0.0)
    return np.maximum(cos, 0.0)


def clip_to_median_norm(deltas: np.ndarray) -> np.ndarray:
    """Each row scaled down to at most the median of the rows' L2 norms."""
    norms = np.linalg.norm(deltas, axis=1)
    bound = float(np.median(norms))
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(norms > bound, bound / norms, 1.0)
    return deltas * factor[:, None]


def reputation_mean(deltas: np.ndarray, reputation: np.ndarray, floor: float,
                    fallback: np.ndarray) -> np.ndarray:
    """The reputation-weighted mean of ``deltas`` (rows below ``floor`` x the median
    reputation get no weight); ``fallback`` when no row has weight."""
    w = np.where(reputation >= floor * float(np.median(reputation)), reputation, 0.0)
    if w.sum() <= 0:
        return fallback
    return (w[:, None] * deltas).sum(axis=0) / w.sum()


@dataclass
class Reputation(Strategy):
    name: str = "reputation"
    beta: float = 0.2  # share trimmed per side for the reference direction
    decay: float = 0.8  # weight of the past in the reputation
    prior: float = 0.5  # reputation of a device seen for the first time
    floor: float = 0.5  # below this share of the median reputation a device gets no weight

    def __post_init__(self) -> None:
        if not 0 <= self.decay < 1 or not 0 <= self.prior <= 1 or not 0 <= self.floor <= 1:
            raise StrategyError(f"reputation: needs 0 <= decay < 1, 0 <= prior <= 1 and 0 <= "
                                f"floor <= 1, got decay={self.decay}, prior={self.prior}, "
                                f"floor={self.floor}")
        trimmed_mean(np.zeros((1, 1)), self.beta)  # beta out of [0, 0.5): StrategyError

    def reputations(self, device_ids: Sequence[int]) -> np.ndarray:
        """The current reputation of each device (``prior`` for one never seen)."""
        ids = self.state.get("reputation_ids", np.zeros(0, np.int64))
        known = dict(zip(ids.tolist(), self.state.get("reputation", np.zeros(0)).tolist(),
                         strict=True))
        return np.array([known.get(d, self.prior) for d in device_ids], np.float64)

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        deltas = stack(updates)
        reference = trimmed_mean(deltas, self.beta)
        ids = [u.device_id for u in updates]
        rep = self.decay * self.reputations(ids) + (1 - self.decay) * trust_scores(deltas,
                                                                                   reference)
        self._remember(ids, rep)
        return reputation_mean(clip_to_median_norm(deltas), rep, self.floor, reference)

    def _remember(self, device_ids: Sequence[int], reputation: np.ndarray) -> None:
        ids = self.state.get("reputation_ids", np.zeros(0, np.int64))
        known = dict(zip(ids.tolist(), self.state.get("reputation", np.zeros(0)).tolist(),
                         strict=True))
        known.update(zip(device_ids, reputation.tolist(), strict=True))
        order = sorted(known)
        self.state["reputation_ids"] = np.array(order, np.int64)
        self.state["reputation"] = np.array([known[d] for d in order], np.float64)
