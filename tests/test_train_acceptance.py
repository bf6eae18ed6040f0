"""THE acceptance test of the train component: the C training step (flt_train_step /
flt_train_epochs) follows its numpy twin (tests/oracles/train.py) within 1e-5 relative over 100
steps, with momentum, FedProx (mu > 0), clipping and weight decay all active, for a
classification head and a regression head.

The design goal is stronger (the same bits, since both sides do the same float32 operations in
the same order); that is asserted too, separately, so a failure says which property broke."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import train as tw
from test_train_cbind import c_train_epochs, c_train_step

REL_TOL = 1e-5
STEPS = 100


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b)) / max(np.max(np.abs(b)), 1e-30))


def init_params(head: tw.HeadSpec, rng: np.random.Generator) -> np.ndarray:
    parts = []
    for ly in head.layers:
        lim = np.sqrt(6.0 / ly.in_size)
        parts += [rng.uniform(-lim, lim, ly.in_size * ly.out_size), rng.normal(0, 0.1, ly.out_size)]
    return np.concatenate(parts).astype(np.float32)


def problem(kind: str):
    rng = np.random.default_rng(1234 if kind == "classification" else 99)
    if kind == "classification":
        head = tw.HeadSpec.mlp([64, 32, 6])
        n = 40
        x = rng.normal(0, 1, (n, 64)).astype(np.float32)
        data = {"labels": rng.integers(0, 6, n).astype(np.int32)}
    else:
        head = tw.HeadSpec.mlp([8, 16, 16, 1], loss=tw.Loss.MSE)
        n = 40
        x = rng.normal(0, 1, (n, 8)).astype(np.float32)
        data = {"targets": (np.sin(x[:, :1] * 2) + 0.5 * x[:, 1:2] * x[:, 2:3]).astype(np.float32)}
    params = init_params(head, rng)
    global_params = (params + rng.normal(0, 0.05, params.shape)).astype(np.float32)
    sgd = tw.SgdConfig(lr=0.05, momentum=0.9, mu=0.1, clip=1.0, weight_decay=1e-4)
    return head, x, data, params, global_params, sgd


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_c_step_matches_twin_over_100_steps(kind):
    head, x, data, params, gparams, sgd = problem(kind)
    batch = 8
    orders = tw.epoch_orders(len(x), STEPS * batch // len(x), seed=7)
    idxs = [b for order in orders for b in tw.batches(order, batch)][:STEPS]
    assert len(idxs) == STEPS
    p_c = p_t = params
    v_c = v_t = np.zeros_like(params)
    worst, bit_exact, clipped = 0.0, True, 0
    for idx in idxs:
        status, p_c, v_c, loss_c = c_train_step(head, p_c, gparams, v_c, x, idx=idx, sgd=sgd, **data)
        assert status == "FLT_OK"
        # the twin step, plus its gradient norm to prove clipping is exercised
        p_t_new, v_t, loss_t = tw.train_step(head, p_t, gparams, v_t, x, idx=idx, sgd=sgd, **data)
        grad_only = tw.train_step(head, p_t, None, np.zeros_like(p_t), x, idx=idx,
                                  sgd=tw.SgdConfig(lr=1.0), **data)[0]
        clipped += float(np.linalg.norm(p_t - grad_only)) > sgd.clip
        p_t = p_t_new
        worst = max(worst, rel_diff(p_c, p_t), rel_diff(v_c, v_t))
        assert abs(float(loss_c) - float(loss_t)) <= REL_TOL * max(abs(float(loss_t)), 1e-30)
        bit_exact &= (p_c.view(np.uint32) == p_t.view(np.uint32)).all() and loss_c == loss_t
    print(f"{kind}: max relative difference C vs twin over {STEPS} steps = {worst:.3g}; "
          f"bit exact: {bit_exact}; steps clipped: {clipped}")
    assert worst <= REL_TOL
    assert clipped > 0, "the test must exercise gradient clipping"
    assert bit_exact, "C and twin should agree bit for bit (same float32 ops in the same order)"


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_c_train_epochs_matches_twin(kind):
    head, x, data, params, gparams, sgd = problem(kind)
    cfg = tw.TrainConfig(epochs=20, batch_size=8, seed=2024, sgd=sgd)  # 5 steps/epoch: 100
    status, p_c, v_c, mean_c, losses_c = c_train_epochs(head, params, gparams, None, x, cfg=cfg,
                                                    **data)
    assert status == "FLT_OK"
    res = tw.train_epochs(head, params, gparams, None, x, cfg=cfg, **data)
    assert rel_diff(p_c, res.params) <= REL_TOL
    assert rel_diff(v_c, res.velocity) <= REL_TOL
    np.testing.assert_allclose(losses_c, np.array(res.epoch_losses), rtol=REL_TOL)
    assert mean_c == res.mean_loss
    assert (p_c.view(np.uint32) == res.params.view(np.uint32)).all()
    assert losses_c[-1] < losses_c[0]


def test_partial_last_batch_matches_twin():
    head, x, data, params, gparams, sgd = problem("classification")
    cfg = tw.TrainConfig(epochs=3, batch_size=7, seed=5, sgd=sgd)  # 40 = 5*7 + 5
    status, p_c, _, mean_c, _ = c_train_epochs(head, params, gparams, None, x, cfg=cfg, **data)
    assert status == "FLT_OK"
    res = tw.train_epochs(head, params, gparams, None, x, cfg=cfg, **data)
    assert (p_c.view(np.uint32) == res.params.view(np.uint32)).all() and mean_c == res.mean_loss


@st.composite
def random_problem(draw):
    n_layers = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 9)) for _ in range(n_layers + 1)]
    loss = draw(st.sampled_from(list(tw.Loss)))
    acts = [draw(st.sampled_from(list(tw.Act))) for _ in range(n_layers)]
    head = tw.HeadSpec(tuple(tw.Layer(widths[i], widths[i + 1], acts[i]) for i in range(n_layers)),
                       loss)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 12))
    x = rng.normal(0, 2, (n, head.n_inputs)).astype(np.float32)
    data = ({"labels": rng.integers(0, head.n_outputs, n).astype(np.int32)}
            if loss == tw.Loss.SOFTMAX_CE
            else {"targets": rng.normal(0, 1, (n, head.n_outputs)).astype(np.float32)})
    params = rng.normal(0, 0.7, head.n_params).astype(np.float32)
    gparams = rng.normal(0, 0.7, head.n_params).astype(np.float32)
    sgd = tw.SgdConfig(lr=draw(st.sampled_from([0.0, 0.01, 0.3])),
                       momentum=draw(st.sampled_from([0.0, 0.5, 0.99])),
                       mu=draw(st.sampled_from([0.0, 0.01, 1.0])),
                       clip=draw(st.sampled_from([0.0, 0.1, 10.0])),
                       weight_decay=draw(st.sampled_from([0.0, 1e-3])))
    cfg = tw.TrainConfig(epochs=draw(st.integers(1, 4)), batch_size=draw(st.integers(1, 16)),
                         seed=seed, sgd=sgd)
    return head, x, data, params, gparams, cfg


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_problem())
def test_c_equals_twin_bit_for_bit_on_random_heads(prob):
    head, x, data, params, gparams, cfg = prob
    st_c, p_c, v_c, mean_c, losses_c = c_train_epochs(head, params, gparams, None, x, cfg=cfg,
                                                      **data)
    try:
        res = tw.train_epochs(head, params, gparams, None, x, cfg=cfg, **data)
    except tw.TrainTwinError as err:  # e.g. divergence to inf: both sides must say so
        assert st_c == err.status
        return
    assert st_c == "FLT_OK"
    np.testing.assert_array_equal(p_c.view(np.uint32), res.params.view(np.uint32))
    np.testing.assert_array_equal(v_c.view(np.uint32), res.velocity.view(np.uint32))
    np.testing.assert_array_equal(losses_c[: cfg.epochs].view(np.uint32),
                                  np.array(res.epoch_losses, np.float32).view(np.uint32))
