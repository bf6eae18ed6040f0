"""Validation + reputation and FedDyn on a robust rule, on hand-checkable vectors (prepare,
execute, assert)."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.strategies import ClientUpdate, StrategyError, make_strategy
from fltiny.strategies.reputation import cosines, validate_round


def upd(i, delta, n=1):
    return ClientUpdate(device_id=i, delta=np.asarray(delta, np.float32), num_examples=n)


def test_cosines_by_hand():
    d = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosines(d, np.array([2.0, 0.0])),
                               [1.0, 0.0, -1.0, 0.0, np.sqrt(0.5)])
    np.testing.assert_array_equal(cosines(d, np.zeros(2)), np.zeros(5))


def test_validate_round_by_hand():
    # norms 1, 1, 1, 10, 1 (median 1): the 10 is above 3 x; the (-1, 0) points away
    d = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [10.0, 0.0], [0.6, 0.8]])
    ok = validate_round(d, np.array([1.0, 1.0]), min_cosine=0.0, max_norm_ratio=3.0)
    assert ok.tolist() == [True, True, False, False, True]


def test_clean_round_is_fedavg():
    # every update passes: the example-weighted mean, as FedAvg
    ups = [upd(1, [4.0, 0.0], n=1), upd(2, [0.0, 4.0], n=3), upd(3, [2.0, 2.0], n=4)]
    out = make_strategy("reputation").aggregate(np.zeros(2, np.float32), ups)
    ref = make_strategy("fedavg").aggregate(np.zeros(2, np.float32), ups)
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_a_flipping_device_is_left_out_and_loses_its_reputation():
    # prepare: four devices agree on (1, 1) with small differences; device 9 sends its negation
    honest = [[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.2]]
    s = make_strategy("reputation")
    w = np.zeros(2, np.float32)
    for _ in range(4):  # execute: four rounds
        ups = [upd(i, h) for i, h in enumerate(honest)] + [upd(9, [-1.0, -1.0])]
        out = s.aggregate(w, ups)
    # assert: every round the aggregate is the honest mean; the flipper's reputation decays
    # 1 -> 0.8^4, below the trust of 0.6, the honest ones stay at 1
    np.testing.assert_allclose(out, np.mean(honest, axis=0), rtol=1e-6)
    assert s.reputations([9]).tolist() == [pytest.approx(0.8**4)]
    assert s.reputations([0, 1, 2, 3, 42]).tolist() == [1.0] * 5


def test_a_distrusted_device_stays_out_when_it_passes():
    s = make_strategy("reputation")
    s.state = {"reputation_ids": np.array([9]), "reputation": np.array([0.3])}
    ups = [upd(1, [1.0, 0.0]), upd(2, [1.0, 0.2]), upd(9, [1.0, -0.2], n=100)]
    out = s.aggregate(np.zeros(2, np.float32), ups)
    np.testing.assert_allclose(out, [1.0, 0.1], rtol=1e-6)  # 9 passed but is not trusted yet
    assert s.reputations([9]).tolist() == [pytest.approx(0.3 * 0.8 + 0.2)]


def test_a_boosted_update_is_left_out():
    ups = [upd(1, [1.0, 0.0]), upd(2, [1.0, 0.0]), upd(3, [1.0, 0.0]), upd(4, [50.0, 0.0])]
    out = make_strategy("reputation").aggregate(np.zeros(2, np.float32), ups)
    np.testing.assert_allclose(out, [1.0, 0.0], rtol=1e-6)


def test_reputation_refuses_bad_options():
    with pytest.raises(StrategyError, match="decay"):
        make_strategy("reputation", decay=1.0)
    with pytest.raises(StrategyError, match="max_norm_ratio"):
        make_strategy("reputation", max_norm_ratio=0.5)
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
