"""ctypes binding of firmware/runtime/delta (used by the other test_delta_* modules) and
direct tests of the C API's argument handling."""

from __future__ import annotations

import ctypes as C
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from oracles import delta as tw
from oracles.delta import QuantMode, SparseDelta
from oracles.payload import encode

from fltiny.native.build import RUNTIME_DIR, build_executable, build_shared_library


def _status_names() -> list[str]:
    """flt_status_t names by value, read from the X-macro list so they cannot drift."""
    text = (RUNTIME_DIR / "core" / "flt_status.h").read_text()
    pairs = sorted((int(v), name) for name, v in re.findall(r"X\((FLT_\w+), (\d+),", text))
    assert [v for v, _ in pairs] == list(range(len(pairs)))
    return [name for _, name in pairs]


STATUS = _status_names()
INDEX_AUTO = 255

f32p = C.POINTER(C.c_float)
u32p = C.POINTER(C.c_uint32)
i8p = C.POINTER(C.c_int8)
u8p = C.POINTER(C.c_uint8)


class SparseDeltaC(C.Structure):
    _fields_ = [
        ("n", C.c_uint32),
        ("k", C.c_uint32),
        ("mode", C.c_int),
        ("block_size", C.c_uint32),
        ("indices", u32p),
        ("values", i8p),
        ("scales", f32p),
    ]


class ConfigC(C.Structure):
    _fields_ = [
        ("k", C.c_uint32),
        ("mode", C.c_int),
        ("block_size", C.c_uint32),
        ("error_feedback", C.c_int),
    ]


class LimitsC(C.Structure):
    _fields_ = [("n_max", C.c_uint32), ("k_max", C.c_uint32), ("scales_max", C.c_uint32)]


@cache
def lib() -> C.CDLL:
    so = C.CDLL(str(build_shared_library(["delta"], name="fltdelta")))
    sigs = {
        "flt_delta_k_from_ppm": (C.c_uint32, [C.c_uint32, C.c_uint32]),
        "flt_delta_num_scales": (C.c_uint32, [C.c_uint32, C.c_int, C.c_uint32]),
        "flt_delta_accumulate": (C.c_int, [f32p, f32p, f32p, f32p, C.c_uint32]),
        "flt_delta_topk": (C.c_int, [f32p, C.c_uint32, C.c_uint32, u32p]),
        "flt_delta_quantize": (
            C.c_int,
            [f32p, C.c_uint32, u32p, C.c_uint32, C.c_int, C.c_uint32, i8p, f32p],
        ),
        "flt_delta_compress": (
            C.c_int,
            [C.POINTER(ConfigC), f32p, f32p, f32p, C.c_uint32, C.POINTER(SparseDeltaC)],
        ),
        "flt_delta_dequantize": (C.c_int, [C.POINTER(SparseDeltaC), f32p, C.c_uint32]),
        "flt_delta_apply": (C.c_int, [C.POINTER(SparseDeltaC), f32p, C.c_uint32]),
        "flt_payload_encode": (
            C.c_int,
            [C.POINTER(SparseDeltaC), C.c_int, u8p, C.c_size_t, C.POINTER(C.c_size_t)],
        ),
        "flt_payload_decode": (
            C.c_int,
            [u8p, C.c_size_t, C.POINTER(LimitsC), C.POINTER(SparseDeltaC)],
        ),
        "flt_payload_max_size": (C.c_size_t, [C.c_uint32, C.c_uint32, C.c_int, C.c_uint32]),
        "flt_payload_section_sizes": (
            C.c_int,
            [C.POINTER(SparseDeltaC), C.POINTER(C.c_uint64), u8p],
        ),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(so, name)
        fn.restype, fn.argtypes = res, args
    return so


def ptr(a: np.ndarray, t):  # noqa: ANN001 - ctypes pointer type
    return a.ctypes.data_as(t)


def check(status: int) -> None:
    assert STATUS[status] == "FLT_OK", STATUS[status]


@dataclass
class Held:
    """A C struct plus the numpy arrays it points into (kept alive together)."""

    c: SparseDeltaC
    arrays: tuple


def to_c(d: SparseDelta) -> Held:
    idx = np.ascontiguousarray(d.indices, dtype=np.uint32)
    val = np.ascontiguousarray(d.values, dtype=np.int8)
    sc = np.ascontiguousarray(d.scales, dtype=np.float32)
    s = SparseDeltaC(d.n, d.k, int(d.mode), d.block_size, ptr(idx, u32p), ptr(val, i8p),
                     ptr(sc, f32p))
    return Held(s, (idx, val, sc))


def c_compress(local, global_, residual, *, k, mode=QuantMode.TENSOR, block_size=0,
               error_feedback=True):
    """Run flt_delta_compress; returns (SparseDelta, new residual)."""
    n = local.size
    work = (residual if residual is not None else np.zeros(n, np.float32)).astype(np.float32)
    ns = max(1, tw.num_scales(k, QuantMode(mode), block_size if mode == QuantMode.BLOCK else 1))
    idx = np.zeros(max(k, 1), np.uint32)
    val = np.zeros(max(k, 1), np.int8)
    sc = np.zeros(ns, np.float32)
    out = SparseDeltaC(0, 0, 0, 0, ptr(idx, u32p), ptr(val, i8p), ptr(sc, f32p))
    cfg = ConfigC(k, int(mode), block_size, int(error_feedback))
    check(lib().flt_delta_compress(C.byref(cfg), ptr(local, f32p), ptr(global_, f32p),
                                   ptr(work, f32p), n, C.byref(out)))
    nsc = tw.num_scales(out.k, QuantMode(out.mode), out.block_size)
    d = SparseDelta(n=out.n, indices=idx[: out.k].copy(), values=val[: out.k].copy(),
                    scales=sc[:nsc].copy(), mode=QuantMode(out.mode), block_size=out.block_size)
    return d, work


def c_encode(d: SparseDelta, fmt: int = INDEX_AUTO) -> bytes:
    held = to_c(d)
    cap = lib().flt_payload_max_size(d.n, d.k, int(d.mode), d.block_size) + 5 * d.k + 64
    buf = np.zeros(cap, np.uint8)
    n_out = C.c_size_t(0)
    check(lib().flt_payload_encode(C.byref(held.c), fmt, ptr(buf, u8p), cap, C.byref(n_out)))
    return buf[: n_out.value].tobytes()


def c_decode(payload: bytes, n_max: int = 1 << 20, k_max: int = 1 << 16,
             scales_max: int = 1 << 16) -> tuple[str, SparseDelta | None]:
    """Returns (status name, delta or None). Buffers are exactly k_max / scales_max long."""
    idx = np.zeros(max(k_max, 1), np.uint32)
    val = np.zeros(max(k_max, 1), np.int8)
    sc = np.zeros(max(scales_max, 1), np.float32)
    out = SparseDeltaC(0, 0, 0, 0, ptr(idx, u32p), ptr(val, i8p), ptr(sc, f32p))
    raw = np.frombuffer(payload, np.uint8) if payload else np.zeros(1, np.uint8)
    lim = LimitsC(n_max, k_max, scales_max)
    st = STATUS[lib().flt_payload_decode(ptr(raw, u8p), len(payload), C.byref(lim),
                                         C.byref(out))]
    if st != "FLT_OK":
        return st, None
    nsc = tw.num_scales(out.k, QuantMode(out.mode), out.block_size)
    return st, SparseDelta(n=out.n, indices=idx[: out.k].copy(), values=val[: out.k].copy(),
                           scales=sc[:nsc].copy(), mode=QuantMode(out.mode),
                           block_size=out.block_size)


# ---- direct tests of the C API ---------------------------------------------------------


def test_k_from_ppm_matches_twin():
    for n in (0, 1, 7, 1000, 99_999, 100_000, 0xFFFFFFFF):
        for ppm in (0, 1, 999, 1000, 10_000, 123_456, 1_000_000, 0xFFFFFFFF):
            assert lib().flt_delta_k_from_ppm(n, ppm) == tw.k_from_ppm(n, ppm)
    assert tw.k_from_fraction(1000, 0.01) == 10
    assert tw.k_from_fraction(10, 0.0) == 1


def test_topk_rejects_bad_arguments():
    acc = np.array([1.0, np.nan, 2.0], np.float32)
    idx = np.zeros(3, np.uint32)
    assert STATUS[lib().flt_delta_topk(ptr(acc, f32p), 3, 2, ptr(idx, u32p))] == (
        "FLT_ERR_NONFINITE")
    acc[1] = 0.0
    assert STATUS[lib().flt_delta_topk(ptr(acc, f32p), 3, 4, ptr(idx, u32p))] == "FLT_ERR_ARG"
    check(lib().flt_delta_topk(ptr(acc, f32p), 3, 0, ptr(idx, u32p)))


def test_topk_ties_lower_index_and_signed_zero():
    acc = np.array([-0.0, 1.0, -1.0, 0.0, 1.0, -2.0], np.float32)
    idx = np.zeros(6, np.uint32)
    for k in range(7):
        check(lib().flt_delta_topk(ptr(acc, f32p), 6, k, ptr(idx, u32p)))
        assert idx[:k].tolist() == tw.topk_indices(acc, k).tolist()
    assert tw.topk_indices(acc, 3).tolist() == [1, 2, 5]
    assert tw.topk_indices(acc, 5).tolist() == [0, 1, 2, 4, 5]


def test_encode_rejects_invalid_delta():
    good = SparseDelta(n=4, indices=np.array([1, 2], np.uint32),
                       values=np.array([3, -127], np.int8),
                       scales=np.array([0.5], np.float32))
    assert c_decode(c_encode(good))[1].equals(good)
    bad_cases = {
        "FLT_ERR_RANGE": [
            SparseDelta(n=4, indices=np.array([2, 1], np.uint32), values=good.values,
                        scales=good.scales),
            SparseDelta(n=2, indices=np.array([1, 2], np.uint32), values=good.values,
                        scales=good.scales),
            SparseDelta(n=4, indices=good.indices, values=np.array([3, -128], np.int8),
                        scales=good.scales),
            SparseDelta(n=4, indices=good.indices, values=good.values,
                        scales=np.array([-0.0], np.float32)),
        ],
        "FLT_ERR_NONFINITE": [
            SparseDelta(n=4, indices=good.indices, values=good.values,
                        scales=np.array([np.inf], np.float32)),
        ],
        "FLT_ERR_ARG": [
            SparseDelta(n=4, indices=good.indices, values=good.values,
                        scales=np.array([0.0], np.float32)),
        ],
    }
    for status, deltas in bad_cases.items():
        for d in deltas:
            held = to_c(d)
            buf = np.zeros(256, np.uint8)
            n_out = C.c_size_t(0)
            st = lib().flt_payload_encode(C.byref(held.c), INDEX_AUTO, ptr(buf, u8p), 256,
                                          C.byref(n_out))
            assert STATUS[st] == status
            with pytest.raises(ValueError):
                encode(d)


def test_encode_nomem():
    d = SparseDelta(n=4, indices=np.array([1], np.uint32), values=np.array([1], np.int8),
                    scales=np.array([1.0], np.float32))
    held = to_c(d)
    buf = np.zeros(64, np.uint8)
    n_out = C.c_size_t(0)
    size = len(c_encode(d))
    for cap in range(size):
        st = lib().flt_payload_encode(C.byref(held.c), INDEX_AUTO, ptr(buf, u8p), cap,
                                      C.byref(n_out))
        assert STATUS[st] == "FLT_ERR_NOMEM"


@pytest.mark.parametrize("n", [100_000])
def test_topk_large_n_with_heavy_ties(n):
    rng = np.random.default_rng(99)
    # few distinct magnitudes, both signs, zeros: most of the selection is decided by ties
    acc = (rng.integers(-4, 5, n) * np.float32(0.25)).astype(np.float32)
    acc[rng.integers(0, n, 50)] = rng.standard_normal(50).astype(np.float32) * 10
    idx = np.zeros(n, np.uint32)
    for k in (1, 49, 50, 51, 1000, tw.k_from_ppm(n, 10_000), n // 2, n - 1, n):
        check(lib().flt_delta_topk(ptr(acc, f32p), n, k, ptr(idx, u32p)))
        assert np.array_equal(idx[:k], tw.topk_indices(acc, k)), k


def test_topk_radix4_variant_against_brute_force():
    src = Path(__file__).resolve().parent / "c" / "delta_radix4.c"
    exe = build_executable([src], [], name="delta_radix4", sanitize=True)
    proc = subprocess.run([str(exe), "7"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stdout + proc.stderr
