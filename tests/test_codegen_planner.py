"""Arena planner: live buffers never overlap, offsets aligned, size <= sum of sizes."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.codegen.planner import ALIGN, Request, lives_overlap, plan_arena


def _check(reqs, offsets, total):
    for r in reqs:
        assert offsets[r.key] % ALIGN == 0
        assert offsets[r.key] + r.size <= total
    for i, a in enumerate(reqs):
        for b in reqs[i + 1 :]:
            if lives_overlap(a, b):
                a0, a1 = offsets[a.key], offsets[a.key] + a.size
                b0, b1 = offsets[b.key], offsets[b.key] + b.size
                assert a1 <= b0 or b1 <= a0, f"{a} and {b} overlap in memory"
    aligned_sum = sum((r.size + ALIGN - 1) // ALIGN * ALIGN for r in reqs)
    assert total <= aligned_sum


def test_chain_reuses_memory():
    # a -> b -> c -> d: only neighbours are live together.
    reqs = [Request(k, 100, k, k + 1) for k in range(4)]
    offsets, total = plan_arena(reqs)
    _check(reqs, offsets, total)
    assert total == 224  # two 112-byte slots


def test_empty():
    assert plan_arena([]) == ({}, 0)


@pytest.mark.parametrize("seed", range(30))
def test_random_lifetimes(seed):
    rng = np.random.default_rng(seed)
    reqs = []
    for k in range(int(rng.integers(1, 25))):
        first = int(rng.integers(0, 20))
        reqs.append(Request(k, int(rng.integers(1, 500)), first,
                            first + int(rng.integers(0, 6))))
    offsets, total = plan_arena(reqs)
    _check(reqs, offsets, total)
    # never smaller than the largest set of simultaneously live buffers needs
    for step in range(30):
        live = sum(r.size for r in reqs if r.first <= step <= r.last)
        assert total >= live


def test_residual_keeps_skip_alive():
    # x (0..3) is read again by the add at step 3: it must not share memory with y1, y2.
    reqs = [Request(0, 64, 0, 3), Request(1, 64, 1, 2), Request(2, 64, 2, 3),
            Request(3, 64, 3, 4)]
    offsets, total = plan_arena(reqs)
    _check(reqs, offsets, total)
