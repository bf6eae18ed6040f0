"""Canary rollout: a new global model reaches a canary share of the fleet first, and the rest
only once the canaries' personal metric did not drop by more than a threshold (``--canary
SHARE --canary-drop D``); otherwise the round rolls the model back to the last promoted one.

The practice is the staged rollout of software releases (canary deployments; for federated
learning see Bonawitz et al. 2019, "Towards Federated Learning at Scale: System Design", whose
servers deploy a new model to a few devices and watch their metrics before the rest). What a
microcontroller fleet adds: the metric is the devices' own personal accuracy (or MAE), measured
on the device in C on its personal test split before it trains, so nothing but that number
leaves the device.

The canaries are a stable cohort: the ``ceil(share x n)`` available devices (at least 1) whose
``device_seed(seed, 0, id)`` is smallest, so the same devices stay canaries across rounds and
resumes (while they are available). A canary always trains without the PERSONAL flag: its
DELTA's personal metric is then the metric of the global model it was just sent. Its
*baseline* is the metric it reported with the last promoted model (the initial model counts as
promoted); a candidate's drop is the mean over the canaries that have a baseline of
``baseline - metric`` (accuracy) or ``metric - baseline`` (MAE). A drop above the threshold is a
rollback; no baseline at all (the first canaries of a run) promotes with a note. The decision
itself is in :func:`judge`, a pure function; :class:`CanaryGate` keeps the state between
rounds and rebuilds it from the run store on resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fltiny.server.rounds import DeviceResult
    from fltiny.server.store import Checkpoint, RunStore


def canary_cohort(available: Sequence[int], share: float, seed: int) -> list[int]:
    """The canaries among ``available``: a stable choice by a hash of (seed, device id)."""
    from fltiny.server.rounds import device_seed

    if not available or share <= 0:
        return []
    k = min(len(available), max(1, math.ceil(share * len(available) - 1e-9)))
    return sorted(sorted(available, key=lambda d: (device_seed(seed, 0, d), d))[:k])


@dataclass(frozen=True)
class Verdict:
    """The canaries' judgement of one candidate model."""

    candidate_version: int
    promoted: bool
    drop: float | None  # None: no canary had a baseline
    threshold: float
    canaries: dict[int, dict[str, float | None]]  # device -> {"baseline", "metric"}

    def record(self) -> dict[str, Any]:
        """What the round's metrics and audit record keep (JSON-able)."""
        return {"candidate_version": self.candidate_version, "promoted": self.promoted,
                "drop": self.drop, "threshold": self.threshold,
                "canaries": {str(d): v for d, v in sorted(self.canaries.items())}}

    def describe(self) -> str:
        measured = "no canary baseline" if self.drop is None else (
            f"canary personal drop {self.drop:+.4f} (threshold {self.threshold:g}, "
            f"{sum(1 for v in self.canaries.values() if v['baseline'] is not None)} canaries)")
        what = "promoted" if self.promoted else "rolled back"
        return f"version {self.candidate_version} {what}: {measured}"


def judge(candidate_version: int, results: Iterable[DeviceResult],
          baseline: dict[int, float], threshold: float, lower_is_better: bool) -> Verdict:
    """Promote or roll back a candidate from its canaries' results (the module docstring)."""
    seen: dict[int, dict[str, float | None]] = {}
    drops = []
    for r in results:
        if r.error or r.personal_n <= 0 or r.personal_metric is None:
            continue
        b = baseline.get(r.device_id)
        seen[r.device_id] = {"baseline": b, "metric": float(r.personal_metric)}
        if b is not None:
            d = float(r.personal_metric) - b if lower_is_better else b - float(r.personal_metric)
            drops.append(d)
    drop = float(np.mean(drops)) if drops else None
    return Verdict(candidate_version, drop is None or drop <= threshold, drop, threshold, seen)


@dataclass
class CanaryGate:
    """The canary state of a run: the last promoted checkpoint and the canaries' baselines."""

    share: float
    threshold: float
    seed: int
    trusted: Checkpoint
    baseline: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: RunStore, share: float, threshold: float,
                   seed: int) -> CanaryGate:
        """Rebuilt from the checkpoints' recorded verdicts: the newest promoted or restored
        version is trusted (version 0 when none); baselines from the canaries' rows."""
        history = store.history()
        trusted = history[0]
        by_version = {c.version: c for c in history}
        baseline: dict[int, float] = {}
        for c in history[1:]:
            v = c.metrics.get("canary")
            if not v:
                continue
            if v.get("promoted"):
                trusted = by_version.get(int(v["candidate_version"]), trusted)
                for d, m in v.get("canaries", {}).items():
                    baseline[int(d)] = float(m["metric"])
            else:
                trusted = by_version.get(int(v.get("to_version", trusted.version)), trusted)
        gate = cls(share, threshold, seed, trusted, baseline)
        if trusted.version == 0 and history[1:]:
            gate.baseline.update(_first_metrics(store))
        return gate

    def is_candidate(self, version: int) -> bool:
        """The model of ``version`` has not been through its canaries yet."""
        return version != self.trusted.version

    def cohort(self, available: Sequence[int]) -> list[int]:
        return canary_cohort(available, self.share, self.seed)

    def observe_trusted(self, results: Iterable[DeviceResult], canaries: Sequence[int]) -> None:
        """The canaries' metrics with the trusted model (their baselines)."""
        for r in results:
            if (r.device_id in canaries and not r.error and r.personal_n > 0
                    and r.personal_metric is not None):
                self.baseline[r.device_id] = float(r.personal_metric)

    def promote(self, verdict: Verdict, checkpoint: Checkpoint) -> None:
        self.trusted = checkpoint
        for d, v in verdict.canaries.items():
            if v["metric"] is not None:
                self.baseline[d] = float(v["metric"])


def _first_metrics(store: RunStore) -> dict[int, float]:
    """The metrics devices reported with the initial model (round 1's rows)."""
    out: dict[int, float] = {}
    for row in store.updates(1):
        f = row.get("figures") or {}
        if isinstance(f, dict) and f.get("personal_n") and f.get("personal_metric") is not None:
            out[int(row["device_id"])] = float(f["personal_metric"])
    return out
