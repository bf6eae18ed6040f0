"""PCG32 and the Fisher-Yates shuffle: C and the twin agree bit for bit."""

from __future__ import annotations

import ctypes as ct

import numpy as np
import pytest
from oracles import train as tw
from test_train_cbind import STATUS, CRng, lib, up

# The first outputs of the PCG reference demo (pcg32-demo, seed 42, stream 54).
PCG_REFERENCE = [0xA15C02B7, 0x7B47F409, 0xBA1D3330, 0x83D2F293, 0xBFA4784B, 0xCBED606E]


def c_rng(seed: int, stream: int) -> CRng:
    r = CRng()
    assert lib().flt_rng_seed(ct.byref(r), seed, stream) == 0
    return r


def test_twin_matches_pcg_reference_demo():
    rng = tw.Pcg32(42, 54)
    assert [rng.next_u32() for _ in range(6)] == PCG_REFERENCE


@pytest.mark.parametrize("seed,stream", [(42, 54), (0, 0), (2**64 - 1, tw.TRAIN_RNG_STREAM),
                                         (123456789, tw.TRAIN_RNG_STREAM)])
def test_sequence_c_equals_twin(seed, stream):
    r = c_rng(seed, stream)
    py = tw.Pcg32(seed, stream)
    assert [lib().flt_rng_next_u32(ct.byref(r)) for _ in range(1000)] == \
        [py.next_u32() for _ in range(1000)]


def test_bounded_c_equals_twin_and_stays_in_range():
    r = c_rng(7, 3)
    py = tw.Pcg32(7, 3)
    out = ct.c_uint32()
    for bound in [1, 2, 3, 7, 10, 1000, 2**31 + 1, 2**32 - 1, 3_000_000_000]:
        for _ in range(50):
            assert lib().flt_rng_bounded(ct.byref(r), bound, ct.byref(out)) == 0
            assert out.value == py.bounded(bound) and out.value < bound
    assert STATUS[lib().flt_rng_bounded(ct.byref(r), 0, ct.byref(out))] == "FLT_ERR_RANGE"


@pytest.mark.parametrize("n", [0, 1, 2, 5, 40, 1000])
def test_shuffle_c_equals_twin(n):
    r = c_rng(99, tw.TRAIN_RNG_STREAM)
    py = tw.Pcg32(99, tw.TRAIN_RNG_STREAM)
    for _ in range(3):  # successive shuffles continue the stream on both sides
        a = np.arange(n, dtype=np.uint32)
        b = a.copy()
        assert lib().flt_shuffle_u32(ct.byref(r), up(a) if n else None, n) == 0
        py.shuffle(b)
        np.testing.assert_array_equal(a, b)
        assert sorted(a.tolist()) == list(range(n))


def test_epoch_orders_are_permutations_and_differ():
    orders = tw.epoch_orders(50, 3, seed=1)
    assert all(sorted(o.tolist()) == list(range(50)) for o in orders)
    assert not np.array_equal(orders[0], orders[1])
    assert all(np.array_equal(a, b) for a, b in
               zip(orders, tw.epoch_orders(50, 3, seed=1), strict=True))


def test_shuffle_is_roughly_uniform():
    """Each of the 6 permutations of 3 items appears ~1/6 of the time (a biased swap fails)."""
    py = tw.Pcg32(5)
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(6000):
        a = np.arange(3)
        py.shuffle(a)
        counts[tuple(a.tolist())] = counts.get(tuple(a.tolist()), 0) + 1
    assert len(counts) == 6 and all(850 < c < 1150 for c in counts.values())
