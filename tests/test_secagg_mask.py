"""Pairwise masks of secure aggregation (firmware/runtime/crypto/secagg_mask.c, bound in
fltiny.native.crypto): the masks of every pair cancel in the sum mod 2^32, a masked update alone
is unrelated to the update, and the mask equals an independent derivation (HKDF and ChaCha20
from the ``cryptography`` package, the key schedule of docs/protocol.md)."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fltiny.native import crypto as cr


def _fleet(ids, seed=0):
    rng = random.Random(seed)
    sk = {i: rng.randbytes(32) for i in ids}
    pk = {i: cr.x25519_public(sk[i]) for i in ids}
    return {i: [(j, cr.x25519_shared(sk[i], pk[j])) for j in ids if j != i] for i in ids}


def _update(rng, k, n_devices):
    """Quantized values whose sum over n_devices cannot wrap: |q| < 2^31 / n."""
    bound = 2**31 // n_devices - 1
    return rng.integers(-bound, bound, size=k).astype(np.int64)


@pytest.mark.parametrize("ids", [(3, 7), (1, 2, 5, 9, 200), tuple(range(1, 17))])
def test_masks_of_every_pair_cancel_in_the_sum(ids):
    rng = np.random.default_rng(len(ids))
    k = 257  # not a multiple of 16 words: a partial last keystream block
    peers = _fleet(ids)
    plain = {i: _update(rng, k, len(ids)) for i in ids}
    masked = {i: cr.secagg_mask(i, 42, peers[i], (plain[i] % 2**32).astype(np.uint32)) for i in ids}
    total = sum(m.astype(np.uint64) for m in masked.values()) % 2**32
    signed = np.where(total >= 2**31, total.astype(np.int64) - 2**32, total.astype(np.int64))
    assert np.array_equal(signed, sum(plain.values()))


def test_a_single_masked_update_looks_unrelated_to_it():
    ids = (3, 7, 11)
    peers = _fleet(ids)
    plain = np.zeros(4096, dtype=np.uint32)  # the most structured update there is
    masked = cr.secagg_mask(3, 1, peers[3], plain)
    assert np.count_nonzero(masked == plain) < 5
    bits = np.unpackbits(masked.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 0.01  # balanced bits: no trace of the zero update
    # a different round gives an unrelated mask
    assert np.count_nonzero(cr.secagg_mask(3, 2, peers[3], plain) == masked) < 5


def test_mask_matches_an_independent_derivation():
    ids = (4, 9)
    peers = _fleet(ids, seed=3)
    (peer, shared), = peers[9]
    k, rnd = 40, 7
    info = b"mask" + struct.pack("<III", rnd, 4, 9)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fltiny secagg v1", info=info).derive(shared)
    assert cr.secagg_pair_key(shared, rnd, 9, 4) == key == cr.secagg_pair_key(shared, rnd, 4, 9)
    stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor().update(bytes(4 * k))
    m = np.frombuffer(stream, dtype="<u4")
    values = np.arange(k, dtype=np.uint32)
    assert np.array_equal(cr.secagg_mask(9, rnd, peers[9], values), values - m)  # 4 < 9: minus
    assert np.array_equal(cr.secagg_mask(4, rnd, peers[4], values), values + m)  # 9 > 4: plus


def test_mask_rejects_a_peer_with_its_own_id():
    with pytest.raises(cr.CryptoError, match="FLT_ERR_ARG"):
        cr.secagg_mask(5, 1, [(5, bytes(range(32)))], np.zeros(3, dtype=np.uint32))
    assert np.array_equal(cr.secagg_mask(5, 1, [], np.arange(3, dtype=np.uint32)), [0, 1, 2])
