"""The head's layer kinds in C (FLT_LAYER_CONV1D, FLT_LAYER_GAP1D): forward and backward
against the float64 oracle tests/oracles/conv_tail.py and against finite differences, the
har-tiny float tail's sizes, geometry validation, and a training run on exact-sized buffers."""

from __future__ import annotations

import ctypes as ct
import dataclasses

import numpy as np
import pytest
from oracles import conv_tail as orc
from test_train_cbind import STATUS, CHead, CLayer, CSizes, fp, lib

L = orc.Layer
CE, MSE = 0, 1

# har-tiny's float tail: conv1 (64x8 -> 32x16, k5 s2 'same') + pooling + dense 16-16-6
HAR_TAIL = [L.conv(64, 8, 16, 5, 2), L.gap(32, 16), L(16, 16, orc.RELU), L(16, 6)]
HEADS = {
    "har-tail": (HAR_TAIL, CE),
    # conv after conv (input gradient through a conv), valid padding, odd stride
    "conv-conv": ([L.conv(12, 3, 4, 3, 2), L.conv(6, 4, 5, 3, 1), L.gap(6, 5), L(5, 3)], CE),
    "valid-mse": ([L.conv(10, 2, 3, 3, 2, "valid", orc.NONE), L.gap(4, 3), L(3, 2)], MSE),
    # dense before a conv, kernel 4 (even: pad 1 left, 2 right), gap not after a conv
    "dense-conv": ([L(6, 12, orc.RELU), L.conv(4, 3, 2, 4, 1), L.gap(4, 2), L(2, 2)], MSE),
    "gap-first": ([L.gap(8, 4), L(4, 3, orc.RELU), L(3, 2)], MSE),
    "k1-stride3": ([L.conv(9, 2, 3, 1, 3, "valid"), L.gap(3, 3), L(3, 4)], CE),
}


def c_head(layers: list[orc.Layer], loss: int) -> CHead:
    h = CHead(n_layers=len(layers), loss=loss)
    for i, ly in enumerate(layers):
        h.layers[i] = CLayer(*ly.fields())
    return h


def sizes(layers, loss) -> CSizes:
    s = CSizes()
    st = lib().flt_train_sizes(ct.byref(c_head(layers, loss)), 0, ct.byref(s))
    assert st == 0, STATUS[st]
    return s


def sample(layers, loss, seed):
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.4, orc.n_params(layers)).astype(np.float32)
    x = rng.normal(0, 1, layers[0].in_size).astype(np.float32)
    y = (int(rng.integers(layers[-1].out_size)) if loss == CE
         else rng.normal(0, 1, layers[-1].out_size).astype(np.float32))
    return p, x, y


def c_forward(layers, loss, params, x) -> np.ndarray:
    acts = np.zeros(sizes(layers, loss).n_acts, np.float32)
    st = lib().flt_dense_forward(ct.byref(c_head(layers, loss)), fp(params), fp(x), fp(acts),
                                 len(acts))
    assert st == 0, STATUS[st]
    return acts


def c_grad(layers, loss, params, x, y, accumulate_twice: bool = False,
           start: float = 7.0, passes: tuple[int, ...] | None = None):
    """(loss, grad) of one sample through the C forward, loss and backward: the backward runs
    once per entry of passes (its accumulate flag; default (0,), or (0, 1) with
    accumulate_twice) on a gradient buffer that starts filled with `start`."""
    h = c_head(layers, loss)
    s = sizes(layers, loss)
    acts = c_forward(layers, loss, params, x)
    out = acts[len(acts) - layers[-1].out_size:].copy()
    lval = ct.c_float()
    dout = np.zeros(layers[-1].out_size, np.float32)
    if loss == CE:
        st = lib().flt_loss_softmax_ce(fp(out), len(out), y, ct.byref(lval), fp(dout))
    else:
        st = lib().flt_loss_mse(fp(out), fp(y), len(out), ct.byref(lval), fp(dout))
    assert st == 0
    grad = np.full(s.n_params, start, np.float32)
    scratch = np.zeros(2 * s.max_width, np.float32)
    if passes is None:
        passes = (0, 1) if accumulate_twice else (0,)
    for acc in passes:
        st = lib().flt_dense_backward(ct.byref(h), fp(params), fp(x), fp(acts), fp(dout),
                                      fp(grad), len(grad), fp(scratch), len(scratch), acc)
        assert st == 0, STATUS[st]
    return float(lval.value), grad, acts, dout


def test_har_tail_sizes():
    s = sizes(HAR_TAIL, CE)
    assert (s.n_params, s.n_acts, s.max_width, s.n_inputs, s.n_outputs) == (1030, 550, 512, 512, 6)
    assert s.work_floats == 1030 + 550 + 2 * 512 == 2604
    assert HAR_TAIL[0].pad_left == 1  # TF 'same' for k5 s2 on 64: 3 zeros, 1 left, 2 right


def test_dense_layers_with_zero_geometry_keep_their_sizes():
    """A head of kind-0 layers sizes exactly as before the kinds (Wmax = max out_size)."""
    s = sizes([L(64, 32, orc.RELU), L(32, 6)], CE)
    assert (s.n_params, s.n_acts, s.max_width, s.work_floats) == (2278, 38, 32, 2278 + 38 + 64)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_c_forward_matches_oracle(name):
    layers, loss = HEADS[name]
    for seed in range(3):
        p, x, _ = sample(layers, loss, seed)
        acts = c_forward(layers, loss, p, x)
        want = np.concatenate(orc.forward(layers, p, x))
        np.testing.assert_allclose(acts, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("name", sorted(HEADS))
def test_c_backward_matches_oracle_and_accumulates(name):
    layers, loss = HEADS[name]
    for seed in range(3):
        p, x, y = sample(layers, loss, seed)
        lval, grad, acts, dout = c_grad(layers, loss, p, x, y)
        acts64 = orc.forward(layers, p, x)
        want = orc.backward(layers, p, x, acts64, dout.astype(np.float64))
        assert abs(lval - orc.loss(layers, p, x, y, loss == CE)) < 1e-5 * max(1.0, abs(lval))
        np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-5 * max(np.abs(want).max(), 1e-3))
        # accumulating onto zeros is storing, up to the sign of zero (+0 + -0 is +0): a conv
        # adds each window's term to the gradient in place (flt_conv1d.h)
        _, grad0, _, _ = c_grad(layers, loss, p, x, y, start=0.0, passes=(1,))
        np.testing.assert_array_equal(grad0, grad)
        # store, then add: 2 * grad, exactly for dense layers, to rounding for the conv's sums
        _, grad2, _, _ = c_grad(layers, loss, p, x, y, accumulate_twice=True)
        if all(ly.kind != orc.CONV1D for ly in layers):
            np.testing.assert_array_equal(grad2, grad + grad)
        else:
            np.testing.assert_allclose(grad2, grad + grad, rtol=1e-5,
                                       atol=1e-6 * max(np.abs(grad).max(), 1e-3))


@pytest.mark.parametrize("name", sorted(HEADS))
def test_c_backward_matches_finite_differences(name):
    """dL/dparams from the C against central differences of the float64 loss; the oracle's
    own backward against the same differences (so the oracle is checked too)."""
    layers, loss = HEADS[name]
    p, x, y = sample(layers, loss, 5)
    _, grad, _, dout = c_grad(layers, loss, p, x, y)
    p64 = p.astype(np.float64)
    h = 1e-6
    num = np.empty_like(p64)
    for i in range(len(p64)):
        e = np.zeros_like(p64)
        e[i] = h
        num[i] = (orc.loss(layers, p64 + e, x, y, loss == CE)
                  - orc.loss(layers, p64 - e, x, y, loss == CE)) / (2 * h)
    scale = max(np.abs(num).max(), 1e-3)
    assert np.abs(grad - num).max() <= 1e-4 * scale
    acts64 = orc.forward(layers, p64, x)
    out64 = acts64[-1]
    d64 = orc.softmax_ce(out64, y)[1] if loss == CE else orc.mse(out64, y)[1]
    assert np.abs(orc.backward(layers, p64, x, acts64, d64) - num).max() <= 1e-6 * scale


def test_padding_taps_are_skipped_not_multiplied():
    """An inf weight on a tap that only ever reads padding leaves every output finite."""
    ly = L.conv(4, 1, 1, 3, 1)  # pad 1 each side: tap 0 of t=0 and tap 2 of t=3 read zeros
    p = np.array([1.0, 1.0, 1.0, 0.0], np.float32)
    x = np.array([1, 2, 3, 4], np.float32)
    head = [ly, L.gap(4, 1), L(1, 1)]
    params = np.concatenate([p, [1.0, 0.0]]).astype(np.float32)
    np.testing.assert_array_equal(c_forward(head, MSE, params, x)[:4], [3, 6, 9, 7])
    params[0] = np.inf  # tap 0 reads x[t-1]: padding only at t = 0
    assert np.isinf(c_forward(head, MSE, params, x)[1])  # sanity: it is used at t = 1
    acts = c_forward(head, MSE, params, x)
    assert acts[0] == 3.0  # t = 0: 1*x0 + 1*x1 only, no inf * 0


def _bad(layer_index: int, **change):
    def make():
        layers = [dataclasses.replace(ly) for ly in HAR_TAIL]
        layers[layer_index] = dataclasses.replace(layers[layer_index], **change)
        return layers
    return make


BAD_GEOMETRY = {
    "unknown kind": (_bad(1, kind=3), "FLT_ERR_UNSUPPORTED"),
    "gap with relu": (_bad(1, act=orc.RELU), "FLT_ERR_UNSUPPORTED"),
    "conv in_ch 0": (_bad(0, in_ch=0), "FLT_ERR_RANGE"),
    "conv out_ch 0": (_bad(0, out_ch=0), "FLT_ERR_RANGE"),
    "conv kernel 0": (_bad(0, kernel=0), "FLT_ERR_RANGE"),
    "conv kernel too big": (_bad(0, kernel=65, pad_left=1), "FLT_ERR_RANGE"),
    "conv stride 0": (_bad(0, stride=0), "FLT_ERR_RANGE"),
    "pad_left == kernel": (_bad(0, pad_left=5), "FLT_ERR_RANGE"),
    "in_size not whole channels": (_bad(0, in_ch=7), "FLT_ERR_SHAPE"),
    "out_size not whole channels": (_bad(0, out_ch=15), "FLT_ERR_SHAPE"),
    "out_len too long": (_bad(0, in_size=60 * 8), "FLT_ERR_SHAPE"),  # 32 windows need 63+ rows
    "out_len too short": (_bad(0, in_size=68 * 8), "FLT_ERR_SHAPE"),  # a 33rd window fits
    "window entirely in padding": (
        lambda: [L(4, 6, 0, 1, 1, 2, 4, 1, 3), L(6, 2)], "FLT_ERR_SHAPE"),
    "gap len not whole": (_bad(1, in_size=511), "FLT_ERR_SHAPE"),
    "gap channels mismatch": (_bad(1, in_ch=8), "FLT_ERR_SHAPE"),
    "gap with a kernel": (_bad(1, kernel=1), "FLT_ERR_SHAPE"),
    "dense with channels": (_bad(2, in_ch=16), "FLT_ERR_SHAPE"),
    "dense with stride": (_bad(3, stride=1), "FLT_ERR_SHAPE"),
    "chain mismatch after conv": (_bad(1, in_size=256, out_size=8), "FLT_ERR_SHAPE"),
    "conv too wide": (_bad(0, in_size=8192), "FLT_ERR_RANGE"),
}


@pytest.mark.parametrize("name", sorted(BAD_GEOMETRY))
def test_bad_geometry_is_rejected_with_its_status(name):
    make, status = BAD_GEOMETRY[name]
    st = lib().flt_head_check(ct.byref(c_head(make(), CE)))
    assert STATUS[st] == status


def test_keras_valid_and_same_geometries_are_accepted():
    for in_len in range(1, 20):
        for k in range(1, 6):
            for s in range(1, 4):
                heads = [[L.conv(in_len, 2, 3, k, s), L(L.conv(in_len, 2, 3, k, s).out_size, 1)]]
                if in_len >= k:
                    v = L.conv(in_len, 2, 3, k, s, "valid")
                    heads.append([v, L(v.out_size, 1)])
                for head in heads:
                    st = lib().flt_head_check(ct.byref(c_head(head, MSE)))
                    assert st == 0, (in_len, k, s, head[0], STATUS[st])


def test_keras_conv_tail_equals_c_forward():
    """Keras Conv1D('same', relu) + GlobalAveragePooling1D + Dense on the same conv0
    activations: the C forward agrees to float32 rounding (kernel transposed [k][in][out] ->
    [out][k][in])."""
    from fltiny.tf import keras

    rng = np.random.default_rng(3)
    inp = keras.Input((64, 8))
    z = keras.layers.Conv1D(16, 5, strides=2, padding="same", activation="relu")(inp)
    z = keras.layers.GlobalAveragePooling1D()(z)
    z = keras.layers.Dense(16, activation="relu")(z)
    model = keras.Model(inp, keras.layers.Dense(6)(z))
    for w in model.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32))
    conv, _, d0, d1 = (lyr.get_weights() for lyr in model.layers[1:])
    params = np.concatenate([conv[0].transpose(2, 0, 1).reshape(-1), conv[1],
                             d0[0].T.reshape(-1), d0[1], d1[0].T.reshape(-1), d1[1]])
    params = params.astype(np.float32)
    x = np.maximum(rng.normal(0, 1, (20, 64, 8)), 0).astype(np.float32)  # relu'd conv0 output
    want = model.predict(x, verbose=0)
    got = np.stack([c_forward(HAR_TAIL, CE, params, np.ascontiguousarray(xi.reshape(-1)))[-6:]
                    for xi in x])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_tail_c_unit_test_under_sanitizers():
    """tests/c/train_conv_test.c: har-tiny's tail trained on exact-sized static buffers."""
    import subprocess
    from pathlib import Path

    from fltiny.native.build import build_executable

    exe = build_executable([Path(__file__).parent / "c" / "train_conv_test.c"], ["train"],
                           name="train_conv_test", sanitize=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                          env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout and not proc.stderr.strip(), proc.stdout + proc.stderr
