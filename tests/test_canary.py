"""Canary rollout (fltiny.server.canary): the verdict as a pure function, the stable cohort, and
a run of real native firmware in which a deliberately harmful aggregate (the round's update
sign-flipped and amplified, injected by a test hook around the strategy) reaches only the
canaries, is rolled back automatically, and is recorded as such in the audit chain.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fltiny.server.canary import canary_cohort, judge
from fltiny.server.rounds import DeviceResult


def _r(dev: int, metric: float | None, n: int = 90, error: str = "") -> DeviceResult:
    return DeviceResult(dev, None, error=error, personal_n=n if metric is not None else 0,
                        personal_metric=metric)


def test_judge_promotes_within_the_threshold_and_rolls_back_beyond():
    base = {1: 0.90, 2: 0.80}
    ok = judge(5, [_r(1, 0.89), _r(2, 0.80)], base, 0.02, lower_is_better=False)
    assert ok.promoted and ok.drop == pytest.approx(0.005)
    bad = judge(5, [_r(1, 0.60), _r(2, 0.79)], base, 0.02, lower_is_better=False)
    assert not bad.promoted and bad.drop == pytest.approx(0.155)
    assert bad.record()["canaries"]["1"] == {"baseline": 0.90, "metric": 0.60}
    # MAE: a rise is the drop
    assert not judge(1, [_r(1, 1.5)], {1: 1.0}, 0.2, lower_is_better=True).promoted
    assert judge(1, [_r(1, 0.9)], {1: 1.0}, 0.2, lower_is_better=True).promoted


def test_judge_ignores_failed_and_unmeasured_canaries():
    v = judge(2, [_r(1, 0.1, error="timeout"), _r(2, None), _r(3, 0.5)], {1: 0.9, 2: 0.9}, 0.02,
              lower_is_better=False)
    assert v.promoted and v.drop is None  # device 3 has no baseline: nothing to compare
    assert set(v.canaries) == {3}


def test_cohort_is_stable_and_at_least_one():
    fleet = list(range(1, 21))
    c = canary_cohort(fleet, 0.2, seed=7)
    assert len(c) == 4 and c == canary_cohort(list(reversed(fleet)), 0.2, seed=7)
    assert set(canary_cohort([d for d in fleet if d != c[0]], 0.2, seed=7)) >= set(c[1:])
    assert len(canary_cohort([1, 2, 3], 0.2, seed=7)) == 1
    assert canary_cohort([1, 2, 3], 0.0, seed=7) == []


@pytest.mark.slow
def test_harmful_aggregate_never_leaves_the_canaries(har_tiny_bundle, tmp_path, monkeypatch):
    from fltiny.experiment import DataSettings, Experiment, RoundConfig
    from fltiny.run.runner import RunOptions, run
    from fltiny.server.store import RunStore

    make = Experiment.strategy
    calls = {"n": 0}

    def harmful_strategy(self):
        strategy = make(self)
        honest = strategy.aggregate

        def aggregate(params, updates):
            out = honest(params, updates)
            calls["n"] += 1
            if calls["n"] == 2:  # the 2nd aggregate: the update sign-flipped, at the model's norm
                step = out - params
                scale = np.linalg.norm(params) / max(float(np.linalg.norm(step)), 1e-12)
                return (params - np.float32(scale) * step).astype(np.float32)
            return out

        strategy.aggregate = aggregate
        return strategy

    monkeypatch.setattr(Experiment, "strategy", harmful_strategy)
    out = tmp_path / "report"
    run(RunOptions(fleet=[("native", 4)],
                   server=RoundConfig(rounds=4, deadline_s=60, canary=0.5, canary_drop=0.3),
                   data=DataSettings(bundle=har_tiny_bundle), out=out,
                   build_root=tmp_path / "build"),
        say=print, log=print)
    store = RunStore(out / "run.sqlite")
    try:
        hist = {c.round: c for c in store.history()}
        harmful = hist[2].version  # the candidate of round 2
        rows = {r: {u["device_id"]: u for u in store.updates(r)} for r in (1, 2, 3, 4)}
        figures = {r: {d: (json.loads(u["figures"]) if isinstance(u["figures"], str)
                           else u["figures"]) for d, u in rows[r].items()} for r in rows}
        canaries = canary_cohort([1, 2, 3, 4], 0.5, seed=0)
        assert len(canaries) == 2
        assert sorted(d for d, f in figures[3].items()
                      if f.get("model_version") == harmful) == canaries
        # the harmful model reached the canaries only: every other device, every round, was
        # sent another model
        for r in rows:
            for d, f in figures[r].items():
                if d not in canaries:
                    assert f.get("model_version") != harmful, (r, d)
        assert sorted(rows[3]) == canaries  # round 3: only the canary was asked
        v3 = hist[3].metrics["canary"]
        assert v3["promoted"] is False and v3["candidate_version"] == 2 and v3["drop"] > 0.3
        assert v3["to_version"] == 1
        assert hist[3].sha256 == hist[1].sha256  # restored to the promoted model
        assert hist[2].metrics["canary"]["promoted"] is True  # version 1 passed its canary
        body = json.loads(store.db.execute(
            "SELECT body FROM audit WHERE run_id = 'run' AND version = 3").fetchone()[0])
        ctl = body["controls"]
        assert [(c["action"], c["origin"], c["to_version"]) for c in ctl] == [
            ("rollback", "canary", 1)]
        assert body["base_sha256"] == hist[1].sha256 and "canary rollback" in body["note"]
        assert store.verify().ok
        # round 4 starts again from the restored model and reaches everyone
        assert sorted(rows[4]) == [1, 2, 3, 4]
        assert all(f.get("model_version") == hist[3].version for f in figures[4].values())
    finally:
        store.close()
