"""Backward pass and losses against finite differences (in float64 on a float64 copy of the
twin's maths), and the C backward against the twin's."""

from __future__ import annotations

import ctypes as ct

import numpy as np
import pytest
from oracles import train as tw
from test_train_cbind import c_head, fp, lib

HEADS = {
    "ce-relu": tw.HeadSpec.mlp([7, 5, 4]),
    "mse-mlp": tw.HeadSpec.mlp([3, 6, 6, 2], loss=tw.Loss.MSE),
    "ce-linear": tw.HeadSpec.mlp([5, 3]),
    "mse-relu-out": tw.HeadSpec.mlp([4, 5, 3], loss=tw.Loss.MSE, out_act=tw.Act.RELU),
}


def loss64(head: tw.HeadSpec, params: np.ndarray, x: np.ndarray, y) -> float:
    """The head's loss in float64 (plain numpy maths, independent of the twin)."""
    a = x.astype(np.float64)
    off = 0
    for ly in head.layers:
        w = params[off:off + ly.in_size * ly.out_size].reshape(ly.out_size, ly.in_size)
        off += ly.in_size * ly.out_size
        b = params[off:off + ly.out_size]
        off += ly.out_size
        a = w @ a + b
        if ly.act == tw.Act.RELU:
            a = np.maximum(a, 0.0)
    if head.loss == tw.Loss.SOFTMAX_CE:
        m = a.max()
        return float(np.log(np.exp(a - m).sum()) - (a[y] - m))
    return float(np.mean((a - y) ** 2))


def sample(head: tw.HeadSpec, seed: int):
    rng = np.random.default_rng(seed)
    params = rng.normal(0, 0.5, head.n_params).astype(np.float32)
    x = rng.normal(0, 1, head.n_inputs).astype(np.float32)
    y = (int(rng.integers(head.n_outputs)) if head.loss == tw.Loss.SOFTMAX_CE
         else rng.normal(0, 1, head.n_outputs).astype(np.float32))
    return params, x, y


def twin_grad(head, params, x, y):
    acts = tw.dense_forward(head, params, x)
    loss, dout = (tw.softmax_ce(acts[-1], y) if head.loss == tw.Loss.SOFTMAX_CE
                  else tw.mse(acts[-1], y))
    return loss, tw.dense_backward(head, params, x, acts, dout), acts, dout


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_matches_finite_differences(name, seed):
    head = HEADS[name]
    params, x, y = sample(head, seed)
    loss, grad, _, _ = twin_grad(head, params, x, y)
    p64 = params.astype(np.float64)
    assert abs(float(loss) - loss64(head, p64, x, y)) < 1e-5 * max(1.0, abs(float(loss)))
    h = 1e-6
    num = np.empty_like(p64)
    for i in range(len(p64)):
        e = np.zeros_like(p64)
        e[i] = h
        num[i] = (loss64(head, p64 + e, x, y) - loss64(head, p64 - e, x, y)) / (2 * h)
    scale = max(np.abs(num).max(), 1e-3)
    assert np.abs(grad - num).max() <= 1e-4 * scale, (grad, num)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_c_forward_backward_and_loss_equal_twin(name):
    head = HEADS[name]
    params, x, y = sample(head, 10)
    loss_t, grad_t, acts_t, dout_t = twin_grad(head, params, x, y)
    sizes = tw.train_sizes(head, 1)
    h = c_head(head)
    acts = np.zeros(sizes.n_acts, dtype=np.float32)
    assert lib().flt_dense_forward(ct.byref(h), fp(params), fp(x), fp(acts), len(acts)) == 0
    np.testing.assert_array_equal(acts, np.concatenate(acts_t))
    out = acts[-head.n_outputs:].copy()
    loss = ct.c_float()
    dout = np.zeros(head.n_outputs, dtype=np.float32)
    if head.loss == tw.Loss.SOFTMAX_CE:
        st = lib().flt_loss_softmax_ce(fp(out), len(out), y, ct.byref(loss), fp(dout))
    else:
        st = lib().flt_loss_mse(fp(out), fp(y), len(out), ct.byref(loss), fp(dout))
    assert st == 0 and np.float32(loss.value) == loss_t
    np.testing.assert_array_equal(dout, dout_t)
    grad = np.full(sizes.n_params, 7.0, dtype=np.float32)
    scratch = np.zeros(2 * sizes.max_width, dtype=np.float32)
    for accumulate in (0, 1):  # store, then add: 2 * grad
        assert lib().flt_dense_backward(ct.byref(h), fp(params), fp(x), fp(acts), fp(dout),
                                        fp(grad), len(grad), fp(scratch), len(scratch),
                                        accumulate) == 0
    np.testing.assert_array_equal(grad, grad_t + grad_t)


def test_softmax_ce_is_stable_for_huge_logits():
    z = np.array([1e30, -1e30, 0.0, 1e30], dtype=np.float32)
    loss, d = tw.softmax_ce(z, 0)
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    assert abs(float(loss) - np.log(2.0)) < 1e-6
    np.testing.assert_allclose(d, [-0.5, 0, 0, 0.5], atol=1e-7)
