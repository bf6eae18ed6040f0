"""Validation + reputation and FedDyn on a robust rule, on hand-checkable vectors (prepare,
execute, assert)."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.strategies import ClientUpdate, StrategyError, make_strategy
from fltiny.strategies.reputation import clip_to_median_norm, reputation_mean, trust_scores


def upd(i, delta, n=1):
    return ClientUpdate(device_id=i, delta=np.asarray(delta, np.float32), num_examples=n)


def test_trust_scores_by_hand():
    d = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    s = trust_scores(d, np.array([2.0, 0.0]))
    np.testing.assert_allclose(s, [1.0, 0.0, 0.0, 0.0, np.sqrt(0.5)])
    np.testing.assert_array_equal(trust_scores(d, np.zeros(2)), np.zeros(5))


def test_clip_to_median_norm_by_hand():
    d = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]])  # norms 5, 1, 2: median 2
    np.testing.assert_allclose(clip_to_median_norm(d), [[1.2, 1.6], [0.0, 1.0], [0.0, 2.0]])


def test_reputation_mean_drops_devices_below_the_floor():
    d = np.array([[1.0], [3.0], [100.0]])
    # median reputation 0.4: floor 0.5 cuts the 0.1 one; (0.4 * 1 + 0.8 * 3) / 1.2
    out = reputation_mean(d, np.array([0.4, 0.8, 0.1]), 0.5, np.array([-1.0]))
    assert out[0] == pytest.approx(2.8 / 1.2)
    np.testing.assert_array_equal(reputation_mean(d, np.zeros(3), 0.5, np.array([-1.0])), [-1])


def test_a_flipping_device_loses_its_weight_over_rounds():
    # prepare: four devices agree on (1, 1) with small differences; device 9 sends its negation
    honest = [[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.2]]
    s = make_strategy("reputation")
    w = np.zeros(2, np.float32)
    for _ in range(6):  # execute: six rounds
        ups = [upd(i, h) for i, h in enumerate(honest)] + [upd(9, [-1.0, -1.0])]
        out = s.aggregate(w, ups)
    # assert: the flipper's reputation decays from the prior to 0.5 * 0.8^6; the honest ones
    # rise towards 1; the last aggregate is the honest devices' reputation-weighted mean
    rep = dict(zip(s.state["reputation_ids"].tolist(), s.state["reputation"].tolist(),
                   strict=True))
    assert rep[9] == pytest.approx(0.5 * 0.8**6)
    assert min(rep[i] for i in range(4)) > 0.8
    assert out[0] > 0.95 and out[1] > 0.95
    assert s.reputations([9, 42]).tolist() == [pytest.approx(0.5 * 0.8**6), 0.5]


def test_reputation_bounds_a_boosted_update_to_the_median_norm():
    ups = [upd(1, [1.0, 0.0]), upd(2, [1.0, 0.0]), upd(3, [1.0, 0.0]), upd(4, [50.0, 0.0])]
    out = make_strategy("reputation").aggregate(np.zeros(2, np.float32), ups)
    np.testing.assert_allclose(out, [1.0, 0.0], rtol=1e-6)


def test_reputation_refuses_bad_options():
    with pytest.raises(StrategyError, match="decay"):
        make_strategy("reputation", decay=1.0)
    with pytest.raises(StrategyError, match="beta"):
        make_strategy("reputation", beta=0.5)


def test_feddyn_on_a_robust_rule_is_feddyn_step_of_that_rule():
    # prepare: three updates, one outlier; FedDyn alpha 0.01
    ups = [upd(1, [1.0, 1.0]), upd(2, [2.0, 2.0]), upd(3, [1000.0, -1000.0])]
    w = np.ones(2, np.float32)
    robust = make_strategy("feddyn+median")
    plain = make_strategy("feddyn")
    # execute: FedDyn's step fed with the median, and FedDyn itself on the median's output
    out = robust.aggregate(w, ups)
    ref = plain.apply(w, np.array([2.0, 1.0], np.float32))  # the coordinate median
    # assert: same step and same server state h; devices keep drift control
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(robust.state["h"], plain.state["h"])
    assert robust.drift and robust.proximal_mu == pytest.approx(0.01)


def test_feddyn_on_a_rule_passes_its_options_and_shares_its_state():
    krum = make_strategy("feddyn+multi-krum", f=3, m=12)
    assert krum.min_updates() == 9 and krum.rule.f == 3 and krum.rule.m == 12
    rep = make_strategy("feddyn+reputation")
    rep.aggregate(np.zeros(1, np.float32), [upd(i, [1.0]) for i in range(3)])
    assert set(rep.state) == {"h", "reputation", "reputation_ids"}  # one checkpointed dict
