"""flt_expf / flt_logf / flt_sqrtf: C and twin identical bit for bit, and close to numpy."""

from __future__ import annotations

import numpy as np
from oracles import train as tw
from test_train_cbind import c_map


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between float32 arrays (monotone integer map)."""

    def key(x: np.ndarray) -> np.ndarray:
        i = x.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(key(a) - key(b))


def bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def random_floats(n: int, seed: int) -> np.ndarray:
    """Random finite float32 bit patterns (all exponents, both signs)."""
    u = np.random.default_rng(seed).integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    x = u.view(np.float32)
    return x[np.isfinite(x)]


SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-45, -1e-45, 1.1754942e-38,
                     3.4028235e38, -3.4028235e38, 88.72283, 88.72284, 88.7228394, -87.33655,
                     -103.97207, -103.97209, -150.0, 100.0, 2.0**-126, 2.0**-149],
                    dtype=np.float32)


def exp_grid() -> np.ndarray:
    return np.concatenate([np.linspace(-104, 89, 4001, dtype=np.float32),
                           np.linspace(-1, 1, 2001, dtype=np.float32),
                           random_floats(2000, 1) % np.float32(100), SPECIALS])


def log_grid() -> np.ndarray:
    return np.concatenate([np.logspace(-45, 38, 4001, dtype=np.float64).astype(np.float32),
                           np.linspace(0.5, 2.0, 2001, dtype=np.float32),
                           np.abs(random_floats(2000, 2)), SPECIALS])


def test_expf_c_equals_twin_bit_for_bit():
    x = exp_grid()
    np.testing.assert_array_equal(bits(c_map("flt_expf", x)), bits(tw.expf(x)))


def test_logf_c_equals_twin_bit_for_bit():
    x = log_grid()
    np.testing.assert_array_equal(bits(c_map("flt_logf", x)), bits(tw.logf(x)))


def test_sqrtf_c_equals_ieee_sqrt_bit_for_bit():
    x = np.concatenate([np.abs(random_floats(5000, 3)), SPECIALS,
                        np.arange(1, 3000, dtype=np.uint32).view(np.float32)])  # subnormals
    with np.errstate(invalid="ignore"):
        ref = np.sqrt(x)
    got = c_map("flt_sqrtf", x)
    # NaN sign/payload is platform-specific (x86 makes -NaN); NaN-ness must agree
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_array_equal(bits(got[ok]), bits(ref[ok]))


def test_expf_within_a_few_ulp_of_numpy():
    x = exp_grid()
    x = x[np.isfinite(x)]
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64)).astype(np.float32)  # numpy exp, rounded once
    got = tw.expf(x)
    normal = np.abs(ref) >= np.float32(2.0**-126)
    assert ulp_distance(got[normal], ref[normal]).max() <= 2
    # subnormal results: absolute error within one subnormal step
    assert ulp_distance(got[~normal], ref[~normal]).max() <= 1


def test_logf_within_a_few_ulp_of_numpy():
    x = log_grid()
    x = x[np.isfinite(x) & (x > 0)]
    ref = np.log(x.astype(np.float64)).astype(np.float32)
    assert ulp_distance(tw.logf(x), ref).max() <= 2


def test_special_values():
    with np.errstate(invalid="ignore"):
        e = tw.expf(np.array([np.nan, np.inf, -np.inf, 89.0, -104.0, 0.0], dtype=np.float32))
        lg = tw.logf(np.array([np.nan, -1.0, 0.0, -0.0, np.inf, 1.0], dtype=np.float32))
    assert np.isnan(e[0]) and e[1] == np.inf and e[2] == 0 and e[3] == np.inf and e[4] == 0
    assert e[5] == 1.0
    assert np.isnan(lg[0]) and np.isnan(lg[1]) and lg[2] == -np.inf and lg[3] == -np.inf
    assert lg[4] == np.inf and lg[5] == 0.0
