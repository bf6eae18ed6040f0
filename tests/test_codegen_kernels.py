"""Kernel-level checks: the fixed-point primitives against a Python twin (edge values
included), the worst-case accumulator ranges of the int8 kernels, and the prepare checks."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from fltiny.codegen.quant import quantize_multiplier
from fltiny.native.build import build_shared_library

I32 = ctypes.c_int32
P32 = ctypes.POINTER(ctypes.c_int32)
P8 = ctypes.POINTER(ctypes.c_int8)


@pytest.fixture(scope="module")
def lib():
    lib = ctypes.CDLL(str(build_shared_library(["kernels"], name="cg_kernels")))
    lib.flt_sat_rounding_doubling_high_mul.argtypes = [I32, I32]
    lib.flt_sat_rounding_doubling_high_mul.restype = I32
    lib.flt_rounding_divide_by_pot.argtypes = [I32, ctypes.c_int]
    lib.flt_rounding_divide_by_pot.restype = I32
    lib.flt_multiply_by_quantized_multiplier.argtypes = [I32, I32, ctypes.c_int]
    lib.flt_multiply_by_quantized_multiplier.restype = I32
    lib.flt_quantize_multiplier.argtypes = [ctypes.c_double, P32, ctypes.POINTER(ctypes.c_int)]
    lib.flt_quantize_multiplier.restype = ctypes.c_int
    return lib


# ---- Python twin of the published arithmetic (exact integers) --------------------------------


def srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = abs(ab + nudge) // (1 << 31)  # C division truncates toward zero
    return q if ab + nudge >= 0 else -q


def rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def mbqm(x: int, m: int, s: int) -> int:
    left, right = max(s, 0), max(-s, 0)
    return rdbpot(srdhm(x * (1 << left), m), right)


EDGES = [0, 1, -1, 2**31 - 1, -(2**31), 2**30, -(2**30), 12345, -12345]


def test_primitives_match_twin(lib):
    rng = np.random.default_rng(3)
    vals = EDGES + [int(v) for v in rng.integers(-(2**31), 2**31, size=300)]
    for a in vals[:60]:
        for b in vals[:60]:
            assert lib.flt_sat_rounding_doubling_high_mul(a, b) == srdhm(a, b)
    for x in vals:
        for e in (0, 1, 5, 17, 30, 31):
            assert lib.flt_rounding_divide_by_pot(x, e) == rdbpot(x, e), (x, e)
    for x in [int(v) for v in rng.integers(-(2**20), 2**20, size=300)]:
        for m, s in [(1 << 30, -3), (2**31 - 1, 0), (1518500250, -31), (1431655765, 2)]:
            assert lib.flt_multiply_by_quantized_multiplier(x, m, s) == mbqm(x, m, s)


def test_quantize_multiplier_c_equals_python(lib):
    rng = np.random.default_rng(5)
    values = [0.0, 1.0, 0.5, 0.999999999999, 2.0**-31, 2.0**-40, 1e-5, 3.7]
    values += [float(v) for v in 10.0 ** rng.uniform(-9, 5, size=300)]
    for v in values:
        m, s = I32(), ctypes.c_int()
        assert lib.flt_quantize_multiplier(v, ctypes.byref(m), ctypes.byref(s)) == 0
        assert (m.value, s.value) == quantize_multiplier(v), v


class FcParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("batches", "depth", "units", "input_offset", "output_offset",
                                   "act_min", "act_max", "n_multipliers")] + [
        ("multiplier", P32), ("shift", P32)]


def _p8(a):
    return a.ctypes.data_as(P8)


def _p32(a):
    return a.ctypes.data_as(P32)


def test_fully_connected_worst_case_accumulator(lib):
    """65,536 products of -128 * 255 plus a large bias: the int32 accumulator's worst case."""
    depth = 65536
    w = np.empty((3, depth), np.int8)
    w[0], w[1], w[2] = -128, 127, np.where(np.arange(depth) % 2, -128, 127)
    x = np.full(depth, 127, np.int8)
    bias = np.array([-8_000_000, 8_000_000, 0], np.int32)
    mult = np.array([1 << 30], np.int32)
    shift = np.array([-24], np.int32)
    p = FcParams(1, depth, 3, 128, 5, -128, 127, 1, _p32(mult), _p32(shift))
    assert lib.flt_fully_connected_prepare(ctypes.byref(p)) == 0
    out = np.zeros(3, np.int8)
    lib.flt_fully_connected_s8(ctypes.byref(p), _p8(x), _p8(w), _p32(bias), _p8(out))
    for u in range(3):
        acc = int(np.sum(w[u].astype(np.int64) * 255)) + int(bias[u])
        assert -(2**31) <= acc < 2**31
        want = min(127, max(-128, mbqm(acc, 1 << 30, -24) + 5))
        assert out[u] == want


def test_fully_connected_prepare_rejects(lib):
    mult = np.array([1 << 30], np.int32)
    shift = np.array([-40], np.int32)  # out of range
    p = FcParams(1, 4, 2, 0, 0, -128, 127, 1, _p32(mult), _p32(shift))
    assert lib.flt_fully_connected_prepare(ctypes.byref(p)) != 0
    shift[0] = -3
    p.depth = 65537  # beyond the accumulator bound
    assert lib.flt_fully_connected_prepare(ctypes.byref(p)) != 0
    p.depth = 4
    p.act_min, p.act_max = 10, -10
    assert lib.flt_fully_connected_prepare(ctypes.byref(p)) != 0
    p.act_min, p.act_max = -128, 127
    assert lib.flt_fully_connected_prepare(ctypes.byref(p)) == 0
    assert lib.flt_fully_connected_prepare(None) != 0


class PoolParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("batches", "in_h", "in_w", "channels", "out_h", "out_w", "f_h",
                                   "f_w", "stride_h", "stride_w", "pad_h", "pad_w", "act_min",
                                   "act_max")]


def test_average_pool_rounding_and_extremes(lib):
    """Ties round away from zero; all -128 / all 127 windows stay exact."""
    x = np.array([[-128, -128], [-128, -127], [127, 127], [126, 127]], np.int8)  # 2x2x2 HWC
    x = x.reshape(1, 2, 2, 2)
    p = PoolParams(1, 2, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, -128, 127)
    assert lib.flt_pool_prepare(ctypes.byref(p)) == 0
    out = np.zeros(2, np.int8)
    lib.flt_avg_pool_s8(ctypes.byref(p), _p8(x), _p8(out))
    for c in range(2):
        s = int(x[0, :, :, c].astype(np.int64).sum())
        want = (s + 2) // 4 if s > 0 else -((-s + 2) // 4)
        assert out[c] == want
