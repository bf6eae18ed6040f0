"""Named invalid inputs, swept by one parametrised test: the C runtime returns the documented
status (no crash, params untouched) and the twin raises TrainTwinError with the same status.
(The same cases and NULL buffers run under ASan/UBSan in tests/c/train_test.c.)"""

from __future__ import annotations

import ctypes as ct
import dataclasses

import numpy as np
import pytest
from oracles import train as tw
from test_train_cbind import STATUS, CTrainCfg, c_head, c_sgd, c_train_epochs, fp, ip, lib, up

GOOD_HEAD = tw.HeadSpec.mlp([4, 5, 3])
GOOD_CFG = tw.TrainConfig(epochs=2, batch_size=4, seed=1,
                          sgd=tw.SgdConfig(lr=0.1, momentum=0.9, mu=0.1, clip=1.0))


def good_case() -> dict:
    rng = np.random.default_rng(0)
    return {"head": GOOD_HEAD, "x": rng.normal(size=(10, 4)).astype(np.float32),
            "labels": rng.integers(0, 3, 10).astype(np.int32), "targets": None,
            "cfg": GOOD_CFG, "with_global": True}


def case(**changes) -> dict:
    return {**good_case(), **changes}


def layers(*sizes: tuple[int, int]) -> tuple[tw.Layer, ...]:
    return tuple(tw.Layer(i, o, tw.Act.RELU) for i, o in sizes)


def with_sgd(**kw) -> tw.TrainConfig:
    return dataclasses.replace(GOOD_CFG, sgd=dataclasses.replace(GOOD_CFG.sgd, **kw))


def bad_label(v: int) -> np.ndarray:
    lab = good_case()["labels"].copy()
    lab[3] = v
    return lab


def nan_features() -> np.ndarray:
    x = good_case()["x"].copy()
    x[2, 1] = np.nan
    return x


CASES = {
    "zero-layers": (case(head=tw.HeadSpec((), tw.Loss.SOFTMAX_CE)), "FLT_ERR_SHAPE"),
    "too-many-layers": (case(head=tw.HeadSpec(layers(*[(4, 4)] * 9))), "FLT_ERR_RANGE"),
    "mismatched-sizes": (case(head=tw.HeadSpec(layers((4, 5), (6, 3)))), "FLT_ERR_SHAPE"),
    "zero-width": (case(head=tw.HeadSpec(layers((4, 0), (0, 3)))), "FLT_ERR_RANGE"),
    "too-wide": (case(head=tw.HeadSpec(layers((4, 5000), (5000, 3)))), "FLT_ERR_RANGE"),
    "batch-size-0": (case(cfg=dataclasses.replace(GOOD_CFG, batch_size=0)), "FLT_ERR_ARG"),
    "epochs-0": (case(cfg=dataclasses.replace(GOOD_CFG, epochs=0)), "FLT_ERR_ARG"),
    "label-too-big": (case(labels=bad_label(3)), "FLT_ERR_RANGE"),
    "label-negative": (case(labels=bad_label(-2)), "FLT_ERR_RANGE"),
    "no-labels": (case(labels=None), "FLT_ERR_ARG"),
    "mse-without-targets": (case(head=tw.HeadSpec.mlp([4, 5, 3], loss=tw.Loss.MSE)),
                            "FLT_ERR_ARG"),
    "mu-without-global": (case(with_global=False), "FLT_ERR_ARG"),
    "negative-lr": (case(cfg=with_sgd(lr=-0.1)), "FLT_ERR_RANGE"),
    "momentum-one": (case(cfg=with_sgd(momentum=1.0)), "FLT_ERR_RANGE"),
    "nan-clip": (case(cfg=with_sgd(clip=float("nan"))), "FLT_ERR_RANGE"),
    "inf-mu": (case(cfg=with_sgd(mu=float("inf"))), "FLT_ERR_RANGE"),
    "nan-feature": (case(x=nan_features()), "FLT_ERR_NONFINITE"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_status(name):
    c, want = CASES[name]
    head: tw.HeadSpec = c["head"]
    n_params = max(sum(ly.in_size * ly.out_size + ly.out_size for ly in head.layers), 1)
    params = np.linspace(-0.5, 0.5, n_params, dtype=np.float32)
    gparams = params.copy() if c["with_global"] else None
    data = {"labels": c["labels"], "targets": c["targets"]}
    st, p_after = c_train_epochs_big_buffers(head, params, gparams, c, data)
    assert st == want
    if want != "FLT_ERR_NONFINITE":  # checks run before anything is written
        np.testing.assert_array_equal(p_after, params)
    with pytest.raises(tw.TrainTwinError) as err:
        tw.train_epochs(head, params, gparams, None, c["x"], cfg=c["cfg"], **data)
    assert err.value.status == want


def c_train_epochs_big_buffers(head, params, gparams, c, data):
    """flt_train_epochs with a work buffer large enough for every case (even invalid heads,
    which train_sizes cannot size), so the status comes from the argument checks."""
    h = c_head(head)
    p = params.copy()
    v = np.zeros_like(p)
    work = np.zeros(1 << 16, dtype=np.float32)
    order = np.zeros(len(c["x"]), dtype=np.uint32)
    cfg = c["cfg"]
    ccfg = CTrainCfg(cfg.epochs, cfg.batch_size, cfg.seed, c_sgd(cfg.sgd))
    mean = ct.c_float()
    x = np.ascontiguousarray(c["x"])
    lab = None if data["labels"] is None else np.ascontiguousarray(data["labels"])
    st = lib().flt_train_epochs(ct.byref(h), fp(p), fp(gparams), fp(v), fp(x), len(x), ip(lab),
                                None, ct.byref(ccfg), fp(work), len(work), up(order),
                                ct.byref(mean), None)
    return STATUS[st], p


def test_good_case_is_ok():
    c = good_case()
    st, *_ = c_train_epochs(c["head"], np.zeros(GOOD_HEAD.n_params, np.float32),
                            np.zeros(GOOD_HEAD.n_params, np.float32), None, c["x"],
                            labels=c["labels"], cfg=c["cfg"])
    assert st == "FLT_OK"
