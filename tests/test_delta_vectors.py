"""The shared vectors (tests/vectors/delta, written by tests/vectors/make_delta_vectors.py) pin
the numpy oracles (tests/oracles) and the C runtime to the same bits: acc, top-k set, int8 values, scales,
residual and payload bytes."""

from __future__ import annotations

import ctypes as C
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from oracles import delta as tw
from oracles import payload as pl
from oracles.delta import QuantMode, SparseDelta
from test_delta_native import (
    c_compress,
    c_decode,
    c_encode,
    check,
    f32p,
    i8p,
    lib,
    ptr,
    to_c,
    u32p,
)

VEC_DIR = Path(__file__).resolve().parent / "vectors" / "delta"
MANIFEST = json.loads((VEC_DIR / "manifest.json").read_text())
CASES = MANIFEST["cases"]


def _inputs(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    n = case["n"]
    raw = np.frombuffer((VEC_DIR / f"{case['name']}.bin").read_bytes(), "<f4").astype(np.float32)
    assert raw.size == n * (3 if case["has_residual"] else 2)
    residual = raw[2 * n :].copy() if case["has_residual"] else None
    return raw[:n].copy(), raw[n : 2 * n].copy(), residual


def _expected(case: dict) -> SparseDelta:
    return SparseDelta(
        n=case["n"],
        indices=np.array(case["indices"], np.uint32),
        values=np.array(case["values"], np.int8),
        scales=np.array([int(h, 16) for h in case["scales_hex"]], np.uint32).view(np.float32),
        mode=QuantMode(case["mode"]),
        block_size=case["block_size"],
    )


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(a.astype("<f4").tobytes()).hexdigest()


def _params(case: dict) -> dict:
    return dict(
        k=case["k"],
        mode=QuantMode(case["mode"]),
        block_size=case["block_size"],
        error_feedback=case["error_feedback"],
    )


ids = [c["name"] for c in CASES]


def test_vectors_cover_every_index_format_and_mode():
    assert {c["index_format"] for c in CASES} == {"varint", "bitmap", "rice", "rice_values"}
    assert {c["mode"] for c in CASES} == {0, 1}
    assert any(not c["error_feedback"] for c in CASES)
    assert any(c["ppm"] is not None for c in CASES) and any(c["ppm"] is None for c in CASES)
    total = sum(p.stat().st_size for p in VEC_DIR.iterdir())
    assert total < 200_000


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_python_twin_reproduces_vectors(case):
    local, global_, residual = _inputs(case)
    if case["ppm"] is not None:
        assert tw.k_from_ppm(case["n"], case["ppm"]) == case["k"]
    res = tw.compress(local, global_, residual, **_params(case))
    assert res.delta.equals(_expected(case))
    assert _sha(res.acc) == case["acc_sha256"]
    assert _sha(res.residual) == case["residual_sha256"]
    payload = pl.encode(res.delta)
    assert payload.hex() == case["payload_hex"]
    assert pl.decode(payload).equals(res.delta)
    sizes = pl.section_sizes(res.delta)
    assert {f.name.lower(): s for f, s in sizes.items()} == case["section_sizes"]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_c_pipeline_reproduces_vectors(case):
    local, global_, residual = _inputs(case)
    delta, work = c_compress(local, global_, residual, **_params(case))
    assert delta.equals(_expected(case))
    assert _sha(work) == case["residual_sha256"]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_c_steps_reproduce_vectors(case):
    """accumulate, topk and quantize called one by one."""
    local, global_, residual = _inputs(case)
    n, k = case["n"], case["k"]
    exp = _expected(case)
    acc = np.zeros(n, np.float32)
    use_res = None
    if case["error_feedback"]:  # first round: zeros, still added (as flt_delta_compress does)
        use_res = residual if residual is not None else np.zeros(n, np.float32)
    res_ptr = ptr(use_res, f32p) if use_res is not None else None
    check(lib().flt_delta_accumulate(ptr(local, f32p), ptr(global_, f32p), res_ptr,
                                     ptr(acc, f32p), n))
    assert _sha(acc) == case["acc_sha256"]
    idx = np.zeros(max(k, 1), np.uint32)
    check(lib().flt_delta_topk(ptr(acc, f32p), n, k, ptr(idx, u32p)))
    assert np.array_equal(idx[:k], exp.indices)
    vals = np.zeros(max(k, 1), np.int8)
    scales = np.zeros(max(exp.scales.size, 1), np.float32)
    check(lib().flt_delta_quantize(ptr(acc, f32p), n, ptr(idx, u32p), k, case["mode"],
                                   case["block_size"], ptr(vals, i8p), ptr(scales, f32p)))
    assert np.array_equal(vals[:k], exp.values)
    assert scales[: exp.scales.size].view(np.uint32).tolist() == exp.scales.view(
        np.uint32).tolist()


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_c_codec_reproduces_vectors(case):
    exp = _expected(case)
    payload = bytes.fromhex(case["payload_hex"])
    assert c_encode(exp) == payload
    status, got = c_decode(payload, n_max=case["n"], k_max=case["k"],
                           scales_max=exp.scales.size)
    assert status == "FLT_OK"
    assert got.equals(exp)
    sizes = (C.c_uint64 * len(pl.IndexFormat))()
    rice = C.c_uint8(0)
    held_fmt_sizes = pl.section_sizes(exp)
    held = to_c(exp)
    check(lib().flt_payload_section_sizes(C.byref(held.c), sizes, C.byref(rice)))
    assert list(sizes) == [held_fmt_sizes[f] for f in pl.IndexFormat]
    assert rice.value == pl.rice_parameter(exp.indices)
    assert len(payload) <= pl.max_size(exp.n, exp.k, exp.mode, exp.block_size)
    assert len(payload) == lib().flt_payload_max_size(exp.n, exp.k, exp.mode, exp.block_size) - (
        held_fmt_sizes[pl.IndexFormat.BITMAP] - min(held_fmt_sizes.values()))


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_dequantize_and_apply_match(case):
    exp = _expected(case)
    held = to_c(exp)
    dense = np.full(exp.n, 7.0, np.float32)
    check(lib().flt_delta_dequantize(C.byref(held.c), ptr(dense, f32p), exp.n))
    assert np.array_equal(dense.view(np.uint32), tw.dequantize(exp).view(np.uint32))
    local, global_, _ = _inputs(case)
    params = global_.copy()
    check(lib().flt_delta_apply(C.byref(held.c), ptr(params, f32p), exp.n))
    assert np.array_equal(params.view(np.uint32), tw.apply(exp, global_).view(np.uint32))
