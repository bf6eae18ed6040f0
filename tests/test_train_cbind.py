"""ctypes binding of the train runtime (firmware/runtime/train), shared by tests/test_train_*.py,
plus the tests of the binding itself (struct layout, sizes)."""

from __future__ import annotations

import ctypes as ct
from functools import lru_cache

import numpy as np
from oracles import train as tw

from fltiny.native.build import build_shared_library

F32P = ct.POINTER(ct.c_float)
U32P = ct.POINTER(ct.c_uint32)
I32P = ct.POINTER(ct.c_int32)

STATUS = {0: "FLT_OK", 1: "FLT_ERR_ARG", 2: "FLT_ERR_SHAPE", 3: "FLT_ERR_RANGE",
          4: "FLT_ERR_TRUNCATED", 5: "FLT_ERR_OVERSIZE", 6: "FLT_ERR_FORMAT",
          7: "FLT_ERR_UNSUPPORTED", 8: "FLT_ERR_NOMEM", 9: "FLT_ERR_NONFINITE",
          10: "FLT_ERR_CHECKSUM", 11: "FLT_ERR_STATE"}


class CLayer(ct.Structure):  # flt_layer_t: 9 uint32_t (the last six zero for a dense layer)
    _fields_ = [(name, ct.c_uint32) for name in (
        "in_size", "out_size", "act", "kind", "in_ch", "out_ch", "kernel", "stride", "pad_left")]


class CHead(ct.Structure):
    _fields_ = [("n_layers", ct.c_uint32), ("loss", ct.c_uint32), ("layers", CLayer * 8)]


class CSgd(ct.Structure):
    _fields_ = [("lr", ct.c_float), ("momentum", ct.c_float), ("mu", ct.c_float),
                ("clip", ct.c_float), ("weight_decay", ct.c_float)]


class CTrainCfg(ct.Structure):
    _fields_ = [("epochs", ct.c_uint32), ("batch_size", ct.c_uint32), ("seed", ct.c_uint64),
                ("sgd", CSgd)]


class CSizes(ct.Structure):
    _fields_ = [(name, ct.c_uint32) for name in (
        "n_params", "n_acts", "max_width", "n_inputs", "n_outputs", "work_floats",
        "opt_state_floats", "order_len", "total_bytes")]


class CRng(ct.Structure):
    _fields_ = [("state", ct.c_uint64), ("inc", ct.c_uint64)]


_SIGS = {
    "flt_expf": (ct.c_float, [ct.c_float]),
    "flt_logf": (ct.c_float, [ct.c_float]),
    "flt_sqrtf": (ct.c_float, [ct.c_float]),
    "flt_rng_seed": (ct.c_int, [ct.POINTER(CRng), ct.c_uint64, ct.c_uint64]),
    "flt_rng_next_u32": (ct.c_uint32, [ct.POINTER(CRng)]),
    "flt_rng_bounded": (ct.c_int, [ct.POINTER(CRng), ct.c_uint32, U32P]),
    "flt_shuffle_u32": (ct.c_int, [ct.POINTER(CRng), U32P, ct.c_uint32]),
    "flt_head_check": (ct.c_int, [ct.POINTER(CHead)]),
    "flt_train_sizes": (ct.c_int, [ct.POINTER(CHead), ct.c_uint32, ct.POINTER(CSizes)]),
    "flt_dense_forward": (ct.c_int, [ct.POINTER(CHead), F32P, F32P, F32P, ct.c_uint32]),
    "flt_dense_backward": (ct.c_int, [ct.POINTER(CHead), F32P, F32P, F32P, F32P, F32P,
                                      ct.c_uint32, F32P, ct.c_uint32, ct.c_int]),
    "flt_loss_softmax_ce": (ct.c_int, [F32P, ct.c_uint32, ct.c_int32, F32P, F32P]),
    "flt_loss_mse": (ct.c_int, [F32P, F32P, ct.c_uint32, F32P, F32P]),
    "flt_clip_grad_norm": (ct.c_int, [F32P, ct.c_uint32, ct.c_float, F32P]),
    "flt_sgd_step": (ct.c_int, [F32P, F32P, F32P, F32P, ct.c_uint32, ct.POINTER(CSgd)]),
    "flt_train_step": (ct.c_int, [ct.POINTER(CHead), F32P, F32P, F32P, F32P, ct.c_uint32,
                                  I32P, F32P, U32P, ct.c_uint32, ct.POINTER(CSgd), F32P,
                                  ct.c_uint32, F32P]),
    "flt_train_epochs": (ct.c_int, [ct.POINTER(CHead), F32P, F32P, F32P, F32P, ct.c_uint32,
                                    I32P, F32P, ct.POINTER(CTrainCfg), F32P, ct.c_uint32, U32P,
                                    F32P, F32P]),
}


@lru_cache(maxsize=1)
def lib() -> ct.CDLL:
    so = ct.CDLL(str(build_shared_library(["train"])))
    for name, (res, args) in _SIGS.items():
        fn = getattr(so, name)
        fn.restype, fn.argtypes = res, args
    return so


def fp(a: np.ndarray | None):
    """float32 pointer of a C-contiguous float32 array (None -> NULL)."""
    if a is None:
        return None
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return a.ctypes.data_as(F32P)


def up(a: np.ndarray | None):
    if a is None:
        return None
    assert a.dtype == np.uint32 and a.flags.c_contiguous
    return a.ctypes.data_as(U32P)


def ip(a: np.ndarray | None):
    if a is None:
        return None
    assert a.dtype == np.int32 and a.flags.c_contiguous
    return a.ctypes.data_as(I32P)


def c_head(head: tw.HeadSpec) -> CHead:
    h = CHead(n_layers=len(head.layers), loss=int(head.loss))
    for i, ly in enumerate(head.layers[:8]):
        h.layers[i] = CLayer(ly.in_size, ly.out_size, int(ly.act))
    return h


def c_sgd(s: tw.SgdConfig) -> CSgd:
    return CSgd(s.lr, s.momentum, s.mu, s.clip, s.weight_decay)


def c_sizes(head: tw.HeadSpec, n_samples: int) -> tw.TrainSizes:
    out = CSizes()
    st = lib().flt_train_sizes(ct.byref(c_head(head)), n_samples, ct.byref(out))
    assert st == 0, STATUS[st]
    return tw.TrainSizes(**{name: getattr(out, name) for name, _ in CSizes._fields_})


def c_train_step(head: tw.HeadSpec, params, global_params, velocity, features, *, labels=None,
                 targets=None, idx=None, sgd: tw.SgdConfig):
    """Run flt_train_step on copies; returns (status, params, velocity, batch_loss)."""
    p = np.array(params, dtype=np.float32)
    v = np.array(velocity, dtype=np.float32)
    g = None if global_params is None else np.ascontiguousarray(global_params, dtype=np.float32)
    x = np.ascontiguousarray(features, dtype=np.float32)
    lab = None if labels is None else np.ascontiguousarray(labels, dtype=np.int32)
    tgt = None if targets is None else np.ascontiguousarray(targets, dtype=np.float32)
    ix = None if idx is None else np.ascontiguousarray(idx, dtype=np.uint32)
    n_batch = len(x) if ix is None else len(ix)
    work = np.zeros(tw.train_sizes(head, len(x)).work_floats, dtype=np.float32)
    loss = ct.c_float(np.nan)
    st = lib().flt_train_step(ct.byref(c_head(head)), fp(p), fp(g), fp(v), fp(x), len(x),
                              ip(lab), fp(tgt), up(ix), n_batch, ct.byref(c_sgd(sgd)), fp(work),
                              len(work), ct.byref(loss))
    return STATUS[st], p, v, np.float32(loss.value)


def c_train_epochs(head: tw.HeadSpec, params, global_params, velocity, features, *, labels=None,
                   targets=None, cfg: tw.TrainConfig):
    """Run flt_train_epochs on copies; returns (status, params, velocity, mean, epoch_losses)."""
    p = np.array(params, dtype=np.float32)
    v = np.zeros_like(p) if velocity is None else np.array(velocity, dtype=np.float32)
    g = None if global_params is None else np.ascontiguousarray(global_params, dtype=np.float32)
    x = np.ascontiguousarray(features, dtype=np.float32)
    lab = None if labels is None else np.ascontiguousarray(labels, dtype=np.int32)
    tgt = None if targets is None else np.ascontiguousarray(targets, dtype=np.float32)
    sizes = tw.train_sizes(head, len(x))
    work = np.zeros(sizes.work_floats, dtype=np.float32)
    order = np.zeros(len(x), dtype=np.uint32)
    ccfg = CTrainCfg(cfg.epochs, cfg.batch_size, cfg.seed, c_sgd(cfg.sgd))
    mean = ct.c_float(np.nan)
    losses = np.zeros(max(cfg.epochs, 1), dtype=np.float32)
    st = lib().flt_train_epochs(ct.byref(c_head(head)), fp(p), fp(g), fp(v), fp(x), len(x),
                                ip(lab), fp(tgt), ct.byref(ccfg), fp(work), len(work), up(order),
                                ct.byref(mean), fp(losses))
    return STATUS[st], p, v, np.float32(mean.value), losses


def c_map(name: str, x: np.ndarray) -> np.ndarray:
    fn = getattr(lib(), name)
    return np.array([fn(float(v)) for v in np.asarray(x, dtype=np.float32)], dtype=np.float32)


# --- tests of the binding ---------------------------------------------------------------------


def test_struct_sizes_match_c_layout():
    assert ct.sizeof(CHead) == 8 + 8 * 36
    assert ct.sizeof(CTrainCfg) == 8 + 8 + 5 * 4 + 4  # padded to the uint64 alignment


def test_sizes_c_equal_python_mirror():
    for head in (tw.HeadSpec.mlp([64, 32, 6]),
                 tw.HeadSpec.mlp([8, 16, 16, 1], loss=tw.Loss.MSE),
                 tw.HeadSpec.mlp([3, 4096, 5])):
        for n in (1, 100, 1000):
            assert c_sizes(head, n) == tw.train_sizes(head, n)


def test_sizes_of_the_reference_head():
    s = tw.train_sizes(tw.HeadSpec.mlp([64, 32, 6]), 0)
    assert s.n_params == 64 * 32 + 32 + 32 * 6 + 6 == 2278
    assert s.work_floats == 2278 + 38 + 2 * 32
    assert s.opt_state_floats == 2278
