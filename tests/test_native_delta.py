"""The host's C payload decoder agrees with the numpy twin and rejects bad payloads."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import delta as tw
from oracles import payload as pl

from fltiny.native.delta import PayloadDecoder, PayloadError


@pytest.mark.parametrize("n, frac", [(374, 0.1), (10_000, 0.01), (2_000, 0.5)])
def test_decode_dense_matches_twin(n, frac):
    rng = np.random.default_rng(n)
    local = rng.normal(0, 1, n).astype(np.float32)
    res = tw.compress(local, np.zeros(n, np.float32), None, k=tw.k_from_fraction(n, frac))
    payload = pl.encode(res.delta)
    dense = PayloadDecoder(n).decode_dense(payload)
    np.testing.assert_array_equal(dense, tw.dequantize(res.delta))
    idx, vals = PayloadDecoder(n).decode_sparse(payload)
    np.testing.assert_array_equal(idx, res.delta.indices)
    np.testing.assert_array_equal(vals, res.delta.sent_values())


def test_decode_sparse_block_mode():
    n = 1000
    local = np.random.default_rng(3).normal(0, 1, n).astype(np.float32)
    res = tw.compress(local, np.zeros(n, np.float32), None, k=100, mode=tw.QuantMode.BLOCK,
                      block_size=16)
    idx, vals = PayloadDecoder(n).decode_sparse(pl.encode(res.delta))
    np.testing.assert_array_equal(idx, res.delta.indices)
    np.testing.assert_array_equal(vals, res.delta.sent_values())


def test_decoder_rejects_wrong_model_and_garbage():
    n = 100
    res = tw.compress(np.ones(n, np.float32), np.zeros(n, np.float32), None, k=5)
    payload = pl.encode(res.delta)
    with pytest.raises(PayloadError, match="FLT_ERR_OVERSIZE"):
        PayloadDecoder(50).decode_dense(payload)
    with pytest.raises(PayloadError) as info:
        PayloadDecoder(n).decode_dense(payload[:-1])
    assert info.value.status == "FLT_ERR_TRUNCATED"
    with pytest.raises(PayloadError):
        PayloadDecoder(n).decode_dense(b"")
    with pytest.raises(PayloadError):
        PayloadDecoder(n).decode_dense(bytes(range(40)))
