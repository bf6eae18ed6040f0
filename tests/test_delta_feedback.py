"""Error feedback over 50 rounds of a seeded delta stream (C and twin in lockstep).

With feedback the unsent part is carried, so after T rounds
    sum_t true_t - sum_t sent_t = residual_T          (exactly, up to float32 rounding)
and the residual stays bounded: one round maps x = d_t + r_{t-1} to r_t = x - Q(topk(x)), and
    ||x - Q(topk(x))||^2 = ||x - topk(x)||^2 + ||topk(x) - Q(topk(x))||^2
                         <= (1 - k/n) ||x||^2 + k (max|x| / 254)^2 <= c^2 ||x||^2,
    c^2 = 1 - k/n + k/254^2
(top-k keeps at least the k/n share of the energy; rounding errs by at most scale/2 with
scale <= max|x| / 127). Hence ||r_t|| <= c (||d_t|| + ||r_{t-1}||) and
    ||residual_T|| <= c / (1 - c) * max_t ||d_t||.
Without feedback nothing is carried and small persistent coordinates are never sent, so the gap
grows with T.
"""

from __future__ import annotations

import numpy as np
from oracles import delta as tw
from oracles.delta import QuantMode
from test_delta_native import c_compress

N, ROUNDS, PPM = 2000, 50, 50_000


def _stream(seed: int = 1234) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    bias = (rng.standard_normal(N) * 0.02).astype(np.float32)  # persistent drift
    return [(bias + rng.standard_normal(N).astype(np.float32) * np.float32(0.01))
            .astype(np.float32) for _ in range(ROUNDS)]


def _run(error_feedback: bool, mode: QuantMode, block: int):
    k = tw.k_from_ppm(N, PPM)
    c2 = 1.0 - k / N + k / 254.0**2
    global_ = np.zeros(N, np.float32)
    residual = np.zeros(N, np.float32)
    c_work = residual.copy()
    true_sum = np.zeros(N, np.float64)
    sent_sum = np.zeros(N, np.float64)
    for d in _stream():
        local = (global_ + d).astype(np.float32)
        true_step = (local - global_).astype(np.float64)  # exactly what the device sees
        res = tw.compress(local, global_, residual, k=k, mode=mode, block_size=block,
                          error_feedback=error_feedback)
        c_delta, c_work = c_compress(local, global_, c_work, k=k, mode=mode, block_size=block,
                                     error_feedback=error_feedback)
        assert c_delta.equals(res.delta)
        assert np.array_equal(c_work.view(np.uint32), res.residual.view(np.uint32))
        if error_feedback:  # the per-round contraction of the bound above
            acc = res.acc.astype(np.float64)
            r = res.residual.astype(np.float64)
            assert r @ r <= c2 * (acc @ acc) * (1 + 1e-5) + 1e-30
        residual = res.residual
        true_sum += true_step
        sent_sum += tw.dequantize(res.delta).astype(np.float64)
        global_ = tw.apply(res.delta, global_)  # the server's new model, as everyone sees it
    max_d = max(float(np.linalg.norm(d.astype(np.float64))) for d in _stream())
    c = np.sqrt(c2)
    return true_sum - sent_sum, residual, c / (1 - c) * max_d


def test_error_feedback_bounds_the_cumulative_gap():
    for mode, block in ((QuantMode.TENSOR, 0), (QuantMode.BLOCK, 32)):
        gap, residual, bound = _run(True, mode, block)
        # |sum_true - sum_sent| equals |residual| elementwise, up to float32 rounding
        np.testing.assert_allclose(gap, residual.astype(np.float64), rtol=0, atol=1e-5)
        assert np.linalg.norm(gap) <= bound


def test_without_error_feedback_the_gap_grows():
    for mode, block in ((QuantMode.TENSOR, 0), (QuantMode.BLOCK, 32)):
        gap_ef, _, _ = _run(True, mode, block)
        gap_no, residual, _ = _run(False, mode, block)
        assert not residual.any()
        # measured: 35.4 vs 7.5 (tensor mode); the no-feedback gap grows ~linearly with rounds
        assert np.linalg.norm(gap_no) > 3 * np.linalg.norm(gap_ef)
