"""The round loop, validation and the append-only run store, driven by an in-memory fleet
whose devices return known deltas (the strategies are the real ones)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from fltiny.server.rounds import DeviceResult, RoundConfig, TrainParams, run_rounds
from fltiny.server.store import RunStore, params_sha256
from fltiny.server.validate import validate_updates
from fltiny.strategies import ClientUpdate, make_strategy


class PullFleet:
    """Every device proposes a step towards a target vector; device 66 sends garbage."""

    def __init__(self, target, evil=False, crash_at=None):
        self.target = target
        self.evil = evil
        self.crash_at = crash_at
        self.rounds_run = []

    def devices(self):
        return [1, 2, 3, 66] if self.evil else [1, 2, 3]

    def run_round(self, round_, devices, global_params, version, train, mu, deadline_s):
        if self.crash_at == round_:
            raise KeyboardInterrupt("aggregator killed")
        self.rounds_run.append(round_)
        out = []
        for d in devices:
            if d == 66:
                delta = np.full_like(global_params, 1e6)
            else:
                delta = 0.5 * (self.target - global_params) * (1 + 0.01 * d)
            out.append(DeviceResult(d, ClientUpdate(d, delta.astype(np.float32), 10 * d, 0.1),
                                    bytes_up=40, bytes_down=400))
        return out


def evaluate_distance(target):
    return lambda p: {"distance": float(np.linalg.norm(p - target))}


def test_rounds_converge_and_checkpoint(tmp_path):
    target = np.arange(6, dtype=np.float32)
    store = RunStore(tmp_path / "run.sqlite")
    metrics = run_rounds(PullFleet(target), make_strategy("fedavg"), store, RoundConfig(rounds=6),
                         np.zeros(6, np.float32), evaluate_distance(target))
    assert [m.round for m in metrics] == list(range(1, 7))
    dist = [m.evaluation["distance"] for m in metrics]
    assert all(b < a for a, b in zip(dist, dist[1:], strict=False)) and dist[-1] < 0.2
    history = store.history()
    assert [c.round for c in history] == list(range(7))
    assert all(c.sha256 == params_sha256(c.params) for c in history)
    assert metrics[0].bytes_up == 120 and metrics[0].participants == 3


def test_garbage_device_never_reaches_the_model(tmp_path):
    target = np.ones(4, np.float32)
    store = RunStore(tmp_path / "run.sqlite")
    cfg = RoundConfig(rounds=3, max_norm=100.0)
    run_rounds(PullFleet(target, evil=True), make_strategy("fedavg"), store, cfg,
               np.zeros(4, np.float32), evaluate_distance(target))
    rows = store.updates()
    evil = [r for r in rows if r["device_id"] == 66]
    assert len(evil) == 3 and not any(r["accepted"] for r in evil)
    assert "above bound" in evil[0]["reason"]
    assert np.abs(store.latest().params).max() < 2.0


def test_quorum_not_met_keeps_model(tmp_path):
    target = np.ones(3, np.float32)
    store = RunStore(tmp_path / "run.sqlite")
    m = run_rounds(PullFleet(target), make_strategy("fedavg"), store,
                   RoundConfig(rounds=1, min_fit=5), np.zeros(3, np.float32),
                   evaluate_distance(target))
    assert "quorum not met" in m[0].note
    np.testing.assert_array_equal(store.latest().params, np.zeros(3))


def test_resume_after_crash_keeps_finished_checkpoints(tmp_path):
    target = np.linspace(-1, 1, 5).astype(np.float32)
    path = tmp_path / "run.sqlite"
    cfg = RoundConfig(rounds=6)
    store = RunStore(path)
    with pytest.raises(KeyboardInterrupt):
        run_rounds(PullFleet(target, crash_at=4), make_strategy("fedavgm"), store, cfg,
                   np.zeros(5, np.float32), evaluate_distance(target))
    before = [(c.version, c.sha256) for c in store.history()]
    assert [v for v, _ in before] == [0, 1, 2, 3]
    store.close()

    store = RunStore(path)
    fleet = PullFleet(target)
    run_rounds(fleet, make_strategy("fedavgm"), store, cfg, np.zeros(5, np.float32),
               evaluate_distance(target))
    assert fleet.rounds_run == [4, 5, 6]
    after = [(c.version, c.sha256) for c in store.history()]
    assert after[:4] == before and len(after) == 7
    # and the resumed run ends exactly where an uninterrupted one does (momentum restored)
    ref = RunStore(tmp_path / "ref.sqlite")
    run_rounds(PullFleet(target), make_strategy("fedavgm"), ref, cfg, np.zeros(5, np.float32),
               evaluate_distance(target))
    assert ref.latest().sha256 == store.latest().sha256


def test_checkpoints_are_append_only_and_rollback_appends(tmp_path):
    target = np.ones(2, np.float32)
    store = RunStore(tmp_path / "run.sqlite")
    run_rounds(PullFleet(target), make_strategy("fedavg"), store, RoundConfig(rounds=3),
               np.zeros(2, np.float32), evaluate_distance(target))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE checkpoints SET sha256 = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM checkpoints")
    r1 = [c for c in store.history() if c.round == 1][0]
    rolled = store.rollback(1)
    assert rolled.version == 4 and rolled.sha256 == r1.sha256 and "rollback" in rolled.note


def test_validation_scores_outlier():
    g = np.zeros(8, np.float32)
    rng = np.random.default_rng(1)
    ups = [ClientUpdate(i, rng.normal(0, 1, 8).astype(np.float32), 5) for i in range(6)]
    ups.append(ClientUpdate(9, np.full(8, 40.0, np.float32), 5))
    ups.append(ClientUpdate(10, np.zeros(3, np.float32), 5))
    accepted, verdicts = validate_updates(g, ups, anomaly_threshold=10.0)
    by = {v.device_id: v for v in verdicts}
    assert not by[9].accepted and "anomaly" in by[9].reason and by[9].anomaly > 10
    assert not by[10].accepted and "shape" in by[10].reason
    assert len(accepted) == 6


def test_norm_bound_relative_to_the_model_and_anomaly_reason():
    """The default bound (RoundConfig.max_update_ratio) is relative to the global model's norm
    (at least 1); a rejected update's reason names the bound, the anomaly its threshold."""
    g = np.full(4, 3.0, np.float32)  # norm 6
    ok = ClientUpdate(1, np.full(4, 0.5, np.float32), 5)
    absurd = ClientUpdate(2, np.full(4, 40.0, np.float32), 5)  # norm 80 > 10 x 6
    ratio = RoundConfig().max_update_ratio
    accepted, verdicts = validate_updates(g, [ok, absurd], max_update_ratio=ratio)
    assert accepted == [ok] and verdicts[0].accepted
    assert verdicts[1].reason == ("norm 80 above bound 60 (10 x the global model's norm 6, "
                                  "--max-update-norm)")
    # a zero model still gets a bound (10 x 1)
    _, v = validate_updates(np.zeros(4, np.float32), [absurd], max_update_ratio=ratio)
    assert "above bound 10 " in v[0].reason
    ups = [ClientUpdate(i, np.full(4, 0.1 * (1 + 0.01 * i), np.float32), 5) for i in range(5)]
    _, v = validate_updates(g, [*ups, ClientUpdate(9, np.full(4, 5.0, np.float32), 5)],
                            anomaly_threshold=8.0, max_update_ratio=ratio)
    assert not v[-1].accepted and v[-1].reason.startswith("anomaly score ")
    assert "above --anomaly-threshold 8 (norm 10, the round's median" in v[-1].reason
    assert "over 6 updates" in v[-1].reason and all(x.accepted for x in v[:-1])


def test_train_params_defaults_are_sane():
    t = TrainParams()
    assert 0 < t.topk_fraction <= 1 and t.epochs >= 1


def test_krum_with_too_few_updates_is_a_round_note(tmp_path):
    """Three devices cannot give Krum (f=1) the five updates it needs: each round says so and
    keeps the model, like an unmet quorum, instead of failing the run."""
    target = np.ones(3, np.float32)
    store = RunStore(tmp_path / "run.sqlite")
    m = run_rounds(PullFleet(target), make_strategy("krum"), store, RoundConfig(rounds=2),
                   np.zeros(3, np.float32), evaluate_distance(target))
    assert [x.note for x in m] == ["krum needs 5 updates, got 3: model unchanged"] * 2
    assert [c.note for c in store.history()][1:] == [x.note for x in m]
    np.testing.assert_array_equal(store.latest().params, np.zeros(3))


def test_strategy_error_during_aggregation_is_a_round_note(tmp_path):
    """A strategy that refuses the round's updates (StrategyError): a round note, the model
    unchanged, the run goes on; never an internal error."""
    from fltiny.errors import StrategyError
    from fltiny.strategies.fedavg import FedAvg

    class Refusing(FedAvg):
        def combine(self, updates):
            raise StrategyError(f"cannot combine {len(updates)} updates")

    store = RunStore(tmp_path / "run.sqlite")
    m = run_rounds(PullFleet(np.ones(3, np.float32)), Refusing(), store, RoundConfig(rounds=2),
                   np.zeros(3, np.float32), lambda p: {"n": 0.0})
    assert [x.note for x in m] == ["aggregation refused (cannot combine 3 updates): model "
                                   "unchanged"] * 2
    np.testing.assert_array_equal(store.latest().params, np.zeros(3))


def test_device_figures_are_stored_with_the_round(tmp_path):
    class Figured(PullFleet):
        def run_round(self, *args):
            return [DeviceResult(r.device_id, r.update, r.bytes_up, r.bytes_down,
                                 figures={"wire_up": 7 * r.device_id})
                    for r in super().run_round(*args)]

    store = RunStore(tmp_path / "run.sqlite")
    run_rounds(Figured(np.ones(2, np.float32)), make_strategy("fedavg"), store,
               RoundConfig(rounds=2), np.zeros(2, np.float32), lambda p: {"n": 0.0})
    rows = store.updates()
    assert [(r["round"], r["device_id"], r["figures"]) for r in rows[:3]] == [
        (1, 1, {"wire_up": 7}), (1, 2, {"wire_up": 14}), (1, 3, {"wire_up": 21})]
    assert len(rows) == 6


def test_train_message_carries_every_setting():
    t = TrainParams(epochs=3, batch_size=8, learning_rate=0.01, momentum=0.5, clip=2.0,
                    topk_fraction=0.25, mu=0.125)
    msg = t.message(4, seed=99)
    assert (msg.round, msg.epochs, msg.batch_size, msg.seed) == (4, 3, 8, 99)
    assert (msg.learning_rate, msg.momentum, msg.clip, msg.topk_fraction, msg.prox_mu) == \
        pytest.approx((0.01, 0.5, 2.0, 0.25, 0.125))
    assert t.message(4, seed=99, mu=0.5).prox_mu == 0.5
    assert TrainParams().message(1, 1).prox_mu == 0.0
