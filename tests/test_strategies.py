"""Aggregation maths on hand-checkable vectors (prepare, execute, assert)."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.errors import UsageError
from fltiny.strategies import ClientUpdate, StrategyError, make_strategy
from fltiny.strategies.krum import krum_scores, multi_krum
from fltiny.strategies.trimmed_mean import trimmed_mean

W0 = np.zeros(2, np.float32)


def upd(i, delta, n=1):
    return ClientUpdate(device_id=i, delta=np.asarray(delta, np.float32), num_examples=n)


def test_fedavg_weights_by_examples():
    # prepare: two devices, 1 and 3 examples
    updates = [upd(1, [4.0, 0.0], n=1), upd(2, [0.0, 4.0], n=3)]
    # execute
    out = make_strategy("fedavg").aggregate(W0, updates)
    # assert: (1*4 + 3*0)/4 = 1, (0 + 3*4)/4 = 3
    np.testing.assert_array_equal(out, [1.0, 3.0])


def test_fedavg_server_lr():
    out = make_strategy("fedavg", server_lr=0.5).aggregate(np.ones(2, np.float32),
                                                           [upd(1, [2.0, -2.0])])
    np.testing.assert_array_equal(out, [2.0, 0.0])


def test_fedprox_sends_mu_and_averages_like_fedavg():
    s = make_strategy("fedprox", proximal_mu=0.1)
    assert s.proximal_mu == pytest.approx(0.1)
    out = s.aggregate(W0, [upd(1, [1, 1], 1), upd(2, [3, 3], 1)])
    np.testing.assert_array_equal(out, [2, 2])


def test_median_ignores_one_outlier():
    updates = [upd(1, [1, 1]), upd(2, [2, 2]), upd(3, [1000, -1000])]
    np.testing.assert_array_equal(make_strategy("median").aggregate(W0, updates), [2, 1])


def test_trimmed_mean_drops_extremes():
    d = np.array([[0.0], [1.0], [2.0], [3.0], [100.0]])
    assert trimmed_mean(d, 0.2)[0] == pytest.approx(2.0)  # drops 0 and 100
    assert trimmed_mean(d, 0.0)[0] == pytest.approx(21.2)
    with pytest.raises(StrategyError):
        trimmed_mean(d, 0.5)


def test_krum_scores_by_hand():
    # five points on a line, f = 1 -> each sums its n - f - 2 = 2 nearest squared distances
    d = np.array([[0.0], [1.0], [3.0], [10.0], [11.0]])
    np.testing.assert_allclose(krum_scores(d, 1), [10.0, 5.0, 13.0, 50.0, 65.0])
    mean, chosen = multi_krum(d, 1, 2)
    assert chosen.tolist() == [1, 0] and mean[0] == pytest.approx(0.5)


def test_krum_rejects_byzantine_update():
    rng = np.random.default_rng(0)
    honest = [upd(i, rng.normal(0, 0.1, 2)) for i in range(6)]
    evil = upd(99, [50.0, 50.0])
    out = make_strategy("krum", f=1).aggregate(W0, [*honest, evil])
    assert np.abs(out).max() < 1.0


def test_krum_needs_enough_updates():
    with pytest.raises(StrategyError, match="more than 2f"):
        make_strategy("krum", f=2).aggregate(W0, [upd(i, [0, 0]) for i in range(5)])


def test_fedavgm_accumulates_momentum():
    s = make_strategy("fedavgm", server_momentum=0.5)
    w1 = s.aggregate(W0, [upd(1, [1, 0])])
    np.testing.assert_array_equal(w1, [1, 0])  # v = 1
    w2 = s.aggregate(w1, [upd(1, [1, 0])])
    np.testing.assert_array_equal(w2, [2.5, 0])  # v = 0.5 + 1 = 1.5


def test_feddyn_server_step_by_hand():
    """Acar et al. 2021: h <- h - alpha d; w <- w + d - h / alpha (d: the mean delta)."""
    s = make_strategy("feddyn", proximal_mu=0.5)
    assert s.drift and s.proximal_mu == 0.5
    w1 = s.aggregate(W0, [upd(1, [1.0, -2.0])])
    # h = -0.5 d = [-0.5, 1]; w = d - h / 0.5 = d + d = [2, -4]
    np.testing.assert_allclose(w1, [2.0, -4.0])
    np.testing.assert_allclose(s.state["h"], [-0.5, 1.0])
    w2 = s.aggregate(w1, [upd(1, [0.0, 0.0])])
    # no change from the devices: h stays, w moves by -h / alpha once more
    np.testing.assert_allclose(w2, [3.0, -6.0])


def test_fedadam_first_step():
    s = make_strategy("fedadam", server_lr=0.1, beta1=0.9, beta2=0.99, tau=0.0)
    w = s.aggregate(W0, [upd(1, [2.0, -2.0])])
    # m = 0.1 d = +-0.2, v = 0.01 d^2 = 0.04 -> m / sqrt(v) = sign(d); step = 0.1 sign(d)
    np.testing.assert_allclose(w, [0.1, -0.1], rtol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (upd(1, [1, 2, 3]), "shape"),
    (upd(1, [np.nan, 0]), "non-finite"),
])
def test_bad_updates_are_refused(bad, message):
    with pytest.raises(StrategyError, match=message):
        make_strategy("fedavg").aggregate(W0, [bad])


def test_unknown_strategy():
    with pytest.raises(UsageError, match="unknown strategy"):
        make_strategy("fedmagic")
    with pytest.raises(UsageError, match="strategy 'median'"):
        make_strategy("median", nonsense=1)
