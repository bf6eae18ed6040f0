"""The batched C decode-and-accumulate (firmware/runtime/delta/accumulate.h) and the
strategies' accumulating path: equal to the dense path to 1e-8, one bad payload rejected
with its status while the rest are added, norms measured in the same pass."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.native import delta as nd
from fltiny.native.accumulate import Accumulator, measure_payload
from fltiny.native.errors import PayloadError
from fltiny.native.status import status_name
from fltiny.server.validate import validate_updates
from fltiny.strategies import ClientUpdate, StrategyError, make_strategy

N = 3000


def payloads(count: int, n: int = N, seed: int = 0, block: bool = False) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        local = rng.normal(0, 0.01 * (1 + i % 3), n).astype(np.float32)
        mode = nd.QuantMode.BLOCK if block else nd.QuantMode.TENSOR
        d, _ = nd.compress(local, np.zeros(n, np.float32), None, k=max(1, n // (5 + i % 7)),
                           mode=mode, block_size=64 if block else 0, bits=8 - i % 4)
        out.append(nd.encode_payload(d))
    return out


def dense(p: bytes, n: int = N) -> np.ndarray:
    return nd.PayloadDecoder(n).decode_dense(p)


@pytest.mark.parametrize("block", [False, True])
def test_batch_sum_equals_the_dense_float64_sum(block):
    ps = payloads(40, block=block)
    w = np.arange(1, 41, dtype=np.float64)
    acc = Accumulator(N)
    res = acc.add(ps, w)
    assert res.ok.all() and acc.accepted == 40 and acc.weight_sum == w.sum()
    ref = sum(wi * dense(p).astype(np.float64) for wi, p in zip(w, ps, strict=True))
    np.testing.assert_allclose(acc.sum, ref, rtol=0, atol=1e-12)
    sq = [float(dense(p).astype(np.float64) @ dense(p).astype(np.float64)) for p in ps]
    np.testing.assert_allclose(res.sq_norms, sq, rtol=1e-12)


def test_one_bad_payload_is_rejected_not_the_batch():
    ps = payloads(6)
    bad = bytearray(ps[2])
    bad[0] = 0x20 | bad[0] & 0x0F  # version 2 (the version nibble)
    other_model = payloads(1, n=N + 1)[0]
    batch = [ps[0], ps[1], bytes(bad), ps[3], ps[4][:-3], other_model, ps[5]]
    w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, float("nan")]
    acc = Accumulator(N)
    res = acc.add(batch, w)
    assert [res.reason(i) for i in range(len(batch))] == [
        "FLT_OK", "FLT_OK", "FLT_ERR_UNSUPPORTED", "FLT_OK", "FLT_ERR_TRUNCATED",
        "FLT_ERR_OVERSIZE", "FLT_ERR_NONFINITE"]
    # the same statuses as the single-payload decoder
    for p, st in zip(batch[2:5], res.status[2:5], strict=True):
        if st:
            with pytest.raises(PayloadError) as exc:
                nd.PayloadDecoder(N).decode(p)
            assert exc.value.status == status_name(int(st))
    ref = dense(ps[0]) * 1.0 + dense(ps[1]).astype(np.float64) * 2.0 + 4.0 * dense(ps[3])
    np.testing.assert_allclose(acc.sum, ref, atol=1e-12)
    assert acc.accepted == 3 and acc.weight_sum == 7.0 and (res.sq_norms[~res.ok] == -1).all()
    neg = acc.add([ps[0]], [-1.0])
    assert neg.reason(0) == "FLT_ERR_RANGE" and acc.accepted == 3


def test_measure_leaves_the_sum_alone():
    ps = payloads(3)
    acc = Accumulator(N)
    res = acc.measure(ps)
    assert res.ok.all() and not acc.sum.any() and acc.accepted == 0
    d = dense(ps[1]).astype(np.float64)
    assert measure_payload(acc, ps[1]) == pytest.approx(float(d @ d), rel=1e-12)
    with pytest.raises(PayloadError):
        measure_payload(acc, b"\x30\x00")


@pytest.mark.parametrize("name", ["fedavg", "fedprox", "fedavgm", "fedadam", "feddyn"])
def test_strategies_agree_with_the_dense_path(name):
    ps = payloads(25, seed=3)
    g = np.random.default_rng(1).normal(0, 1, N).astype(np.float32)
    counts = [10 + 3 * i for i in range(25)]
    acc = Accumulator(N)
    sq = acc.measure(ps).sq_norms
    packed = [ClientUpdate(i, None, c, payload=p, n_params=N, sq_norm=float(s))
              for i, (p, c, s) in enumerate(zip(ps, counts, sq, strict=True))]
    plain = [ClientUpdate(i, dense(p), c) for i, (p, c) in enumerate(zip(ps, counts, strict=True))]
    a, b = make_strategy(name), make_strategy(name)
    for _ in range(2):  # twice: the server optimizers' state too
        ours, theirs = a.aggregate(g, packed), b.aggregate(g, plain)
        assert np.abs(ours.astype(np.float64) - theirs).max() <= 1e-8
    mixed = packed[:10] + plain[10:]
    np.testing.assert_allclose(make_strategy("fedavg").combine(mixed),
                               make_strategy("fedavg").combine(plain), atol=1e-12)


def test_strategy_names_the_rejected_payload():
    ps = payloads(2)
    ups = [ClientUpdate(7, None, 5, payload=ps[0], n_params=N),
           ClientUpdate(8, None, 5, payload=ps[1][:-1], n_params=N)]
    with pytest.raises(StrategyError, match="device 8.*FLT_ERR_TRUNCATED"):
        make_strategy("fedavg").combine(ups)


def test_validation_uses_the_measured_norms():
    ps = payloads(8, seed=5)
    acc = Accumulator(N)
    sq = acc.measure(ps).sq_norms
    packed = [ClientUpdate(i, None, 5, payload=p, n_params=N, sq_norm=float(s))
              for i, (p, s) in enumerate(zip(ps, sq, strict=True))]
    plain = [ClientUpdate(i, dense(p), 5) for i, p in enumerate(ps)]
    g = np.zeros(N, np.float32)
    _, v1 = validate_updates(g, packed, max_norm=1.0)
    _, v2 = validate_updates(g, plain, max_norm=1.0)
    for a, b in zip(v1, v2, strict=True):
        assert (a.accepted, a.reason) == (b.accepted, b.reason)
        assert a.norm == pytest.approx(b.norm, rel=1e-12, nan_ok=True)
        assert a.cosine == pytest.approx(b.cosine, rel=1e-9)
    assert sum(v.accepted for v in v1) not in (0, len(v1))
    # robust strategies still work on payload updates (decoded for their matrix)
    np.testing.assert_allclose(make_strategy("median").combine(packed),
                               make_strategy("median").combine(plain))
