"""FedDyn's server step on a Byzantine-robust rule's aggregate (drift control that a few
hostile devices cannot steer).

FedDyn (fltiny.strategies.feddyn; Acar et al. 2021) keeps server state h and moves the model by
the round's mean delta d: h <- h - alpha d, w <- w + d - h / alpha. Its h sums every round's d,
so one poisoned mean persists in every later model. Here d is the robust ``rule``'s aggregate
(median, trimmed mean, Krum / Multi-Krum, ...: its ``combine``) instead of the mean, so h only
ever holds what the rule let through; the devices keep FedDyn's drift control (TRAIN DRIFT,
alpha = prox_mu) unchanged. Built by ``make_strategy("feddyn+<rule>", **rule_options)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fltiny.strategies.base import ClientUpdate, Strategy
from fltiny.strategies.feddyn import FedDyn
from fltiny.strategies.trimmed_mean import TrimmedMean


@dataclass
class RobustFedDyn(FedDyn):
    name: str = "feddyn+trimmed-mean"
    rule: Strategy = field(default_factory=TrimmedMean)

    def min_updates(self) -> int:
        return self.rule.min_updates()

    def combine(self, updates: Sequence[ClientUpdate]) -> np.ndarray:
        self.rule.state = self.state  # one state dict (h and the rule's), checkpointed together
        return self.rule.combine(updates)
