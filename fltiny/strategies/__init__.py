"""Aggregation strategies, one per module; ``make_strategy(name, **options)`` builds one."""

from __future__ import annotations

from typing import Any

from fltiny.errors import StrategyError, UsageError
from fltiny.strategies.base import ClientUpdate, Strategy
from fltiny.strategies.fedadam import FedAdam
from fltiny.strategies.fedavg import FedAvg
from fltiny.strategies.fedavgm import FedAvgM
from fltiny.strategies.feddyn import FedDyn
from fltiny.strategies.fedprox import FedProx
from fltiny.strategies.krum import Krum
from fltiny.strategies.median import Median
from fltiny.strategies.reputation import Reputation
from fltiny.strategies.robust_feddyn import RobustFedDyn
from fltiny.strategies.trimmed_mean import TrimmedMean

STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "fedprox": FedProx,
    "median": Median,
    "trimmed-mean": TrimmedMean,
    "krum": Krum,
    "multi-krum": Krum,
    "fedavgm": FedAvgM,
    "fedadam": FedAdam,
    "feddyn": FedDyn,
    "reputation": Reputation,
}
ROBUST_RULES = ("median", "trimmed-mean", "krum", "multi-krum", "reputation")
STRATEGIES.update({f"feddyn+{rule}": RobustFedDyn for rule in ROBUST_RULES})


def make_strategy(name: str, **options: Any) -> Strategy:
    """The strategy called ``name`` with its keyword options (UsageError for unknown names or
    options, StrategyError for values it cannot work with)."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise UsageError(
            f"unknown strategy '{name}'; choose one of: {', '.join(STRATEGIES)}"
        ) from None
    if cls is RobustFedDyn:  # FedDyn's server step on a robust rule: the options are the rule's
        return RobustFedDyn(name=name, rule=make_strategy(name.removeprefix("feddyn+"), **options))
    if name == "multi-krum":
        options.setdefault("m", 3)
    try:
        return cls(name=name, **options)
    except TypeError as exc:
        raise UsageError(f"strategy '{name}': {exc}; see the strategy's module in "
                         "fltiny/strategies for its options") from None


__all__ = ["STRATEGIES", "ClientUpdate", "Strategy", "StrategyError", "make_strategy"]
