"""A secure-aggregation round between C devices (fltiny.native.secagg.SecAggDevice, the runtime's
client.c) and the server (fltiny.privacy.secagg.SecAggRound): the unmasked sum equals the plain
sum of the same quantized updates exactly, with and without dropouts (a third of the cohort
dropping after MASKED, devices dropping before it); what the server receives holds no
individual update (a masked update is noise unrelated to the device's); the key schedule, the
share box, Shamir shares and the index set match independent derivations (the ``cryptography``
package and a Python GF(2^8) written here); refusals are one line naming the problem."""

from __future__ import annotations

import hmac
import struct
from dataclasses import replace

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fltiny.native import secagg as sa
from fltiny.native.crypto import CryptoError
from fltiny.privacy.secagg import SecAggError, SecAggRound

SALT = b"fltiny secagg v1"


def _shared(ids, **round_kw):
    """A round's devices and server up to the relayed shares (before MASKED)."""
    devs = {i: sa.SecAggDevice(i) for i in ids}
    srv = SecAggRound(**round_kw)
    for i, d in devs.items():
        srv.advertise(i, d.begin(srv.begin_message()))
    cohort = srv.cohort()
    for i, d in devs.items():
        srv.take_shares(i, d.cohort(cohort))
    for i, d in devs.items():
        d.receive(srv.relay(i))
    return srv, devs


def _round(ids, *, n_params=300, k=48, w=16, t=None, rnd=1, epoch=1, seed=0,
           drop_before=(), drop_after=(), updates=None):
    """Runs one round; returns (server, devices, quantized values per device)."""
    srv, devs = _shared(ids, round=rnd, epoch=epoch, n_params=n_params, k=k, clip=0.5,
                        index_seed=seed, w=w, t=t)
    rng = np.random.default_rng(seed)
    q = {}
    for i, d in devs.items():
        p = d.params()
        idx = sa.index_set(p["index_seed"], p["round"], n_params, p["k"])
        delta = (updates[i] if updates is not None
                 else rng.normal(0, 0.2, n_params).astype(np.float32))
        q[i] = sa.quantize(delta, idx, p["scale"], p["qmax"])
        if i not in drop_before:
            srv.take_masked(i, d.masked(q[i]))
    unmask = srv.unmask()
    for i, d in devs.items():
        if i not in drop_before and i not in drop_after:
            srv.take_reveal(i, d.unmask(unmask))
    return srv, devs, q


def _plain(q, ids):
    return sum(q[i].view(np.int32).astype(np.int64) for i in ids)


@pytest.mark.parametrize("w", [8, 16, 32])
def test_aggregate_equals_the_plain_sum_exactly(w):
    ids = [2, 3, 7, 11, 12]
    srv, _devs, q = _round(ids, w=w)
    assert np.array_equal(srv.result(), _plain(q, ids))
    # the mean the strategy gets: the plain mean of the quantized values, on the index set
    mean = srv.mean_delta()
    assert np.count_nonzero(mean) <= srv.k and mean.shape == (srv.n_params,)
    assert np.allclose(mean[srv.index], _plain(q, ids) / (srv.scale * len(ids)))


def test_a_third_dropping_after_masked_still_decodes():
    ids = list(range(20, 29))  # n = 9, t = 5
    drop = {21, 24, 28}
    srv, _devs, q = _round(ids, drop_after=drop)
    assert srv.survivors == ids and srv.dropped == []
    assert np.array_equal(srv.result(), _plain(q, ids))  # their updates count: they sent them


def test_dropouts_before_and_after_masked_together():
    ids = list(range(1, 13))  # n = 12, t = 6
    before, after = {4, 9}, {1, 6, 12}
    srv, _devs, q = _round(ids, drop_before=before, drop_after=after)
    kept = [i for i in ids if i not in before]
    assert srv.dropped == sorted(before)
    assert np.array_equal(srv.result(), _plain(q, kept))


def test_too_many_dropouts_is_one_line_naming_the_missing_shares():
    ids = list(range(1, 7))  # t = 3: 3 responders leave 2 shares of each one's own seed
    srv, _devs, _q = _round(ids, drop_after={1, 2, 3})
    with pytest.raises(SecAggError, match=r"2 shares of device 4's self-mask seed, need t = 3"):
        srv.result()


def test_the_server_never_holds_an_individual_update():
    ids = [5, 6, 7, 8, 9, 10]
    n = 400
    # the most recognisable updates: device 5's is a ramp, the others zero
    updates = {i: np.zeros(n, np.float32) for i in ids}
    updates[5] = np.linspace(-0.5, 0.5, n).astype(np.float32)
    srv, _devs, q = _round(ids, n_params=n, k=256, updates=updates, drop_before={10})
    masked = {d: sa.decode_masked(p)[2] for d, kind, p in srv.received if kind == "MASKED"}
    assert set(masked) == {5, 6, 7, 8, 9}
    mine = q[5].view(np.int32).astype(np.int64)
    y = masked[5].astype(np.int64)
    assert np.std(mine) > 1000  # a strong signal ...
    assert abs(np.corrcoef(mine, y)[0, 1]) < 0.2  # ... that the masked update does not show
    assert np.count_nonzero(y == (mine % 2**16)) < 5
    bits = np.unpackbits(masked[6].astype("<u2").view(np.uint8))  # a zero update: balanced bits
    assert abs(bits.mean() - 0.5) < 0.03
    # no array the server keeps, and no payload it received, equals a device's quantized values
    for i in ids:
        plain16 = (q[i] & 0xFFFF).astype("<u2").tobytes()
        assert all(plain16 not in p for _d, _k, p in srv.received)
    held = [v for v in vars(srv).values() if isinstance(v, np.ndarray)]
    held += [a for v in vars(srv).values() if isinstance(v, dict)
             for a in v.values() if isinstance(a, np.ndarray)]
    assert held and not any(np.array_equal(a % 2**16, q[i] % 2**16) for a in held for i in ids)
    # what a reveal carries: one share per device, b for survivors, s for the dropped only
    for _d, kind, p in srv.received:
        if kind == "REVEAL":
            _r, entries = sa.decode_reveal(p)
            assert len({e[0] for e in entries}) == len(entries)
            assert {e[0] for e in entries if e[1] == sa.KIND_MASK} == {10}


def test_device_refuses_to_reveal_when_named_dropped_or_asked_twice():
    ids = [1, 2, 3, 4, 5]
    srv, devs = _shared(ids, round=3, epoch=1, n_params=50, k=8, clip=1.0, index_seed=1)
    for i, d in devs.items():
        srv.take_masked(i, d.masked(np.zeros(8, np.uint32)))
    with pytest.raises(CryptoError, match="secagg unmask failed .FLT_ERR_STATE."):
        devs[1].unmask(sa.encode_unmask(3, [2, 3, 4, 5], [1]))
    good = sa.encode_unmask(3, ids, [])
    devs[1].unmask(good)
    with pytest.raises(CryptoError, match="FLT_ERR_STATE"):
        devs[1].unmask(good)
    with pytest.raises(CryptoError, match="FLT_ERR_REPLAY"):
        devs[2].begin(sa.encode_begin(1, 3))


def test_bad_messages_are_refused_with_the_reason():
    with pytest.raises(CryptoError, match=r"COHORT decode failed \(FLT_ERR_TRUNCATED\)"):
        sa.SecAggDevice(1).cohort(b"\x01" * 20)
    srv = SecAggRound(round=1, epoch=1, n_params=10, k=4, clip=1.0, index_seed=1)
    with pytest.raises(CryptoError, match=r"ADVERTISE decode failed \(FLT_ERR_FORMAT\)"):
        srv.advertise(3, bytes(73))
    with pytest.raises(SecAggError, match="1 devices advertised keys"):
        srv.advertise(3, sa.SecAggDevice(3).begin(srv.begin_message()))
        srv.cohort()


# ---- independent derivations --------------------------------------------------------------


def _hkdf(ikm, info, n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=SALT, info=info).derive(ikm)


def _gf_mul(a, b):
    r = 0
    for _ in range(8):
        if b & 1:
            r ^= a
        a = ((a << 1) ^ 0x11B) if a & 0x80 else a << 1
        b >>= 1
    return r


def test_derive_box_and_shamir_match_independent_code():
    ikm = bytes(range(32))
    assert sa.derive(ikm, b"mkey", 3, 9) == _hkdf(ikm, b"mkey" + struct.pack("<II", 3, 9))
    chan = bytes(range(1, 33))
    pt = bytes(range(64))
    box = sa.box_seal(chan, 7, 1, 2, pt)
    keys = _hkdf(chan, b"box " + struct.pack("<III", 7, 1, 2), 64)
    stream = Cipher(algorithms.ChaCha20(keys[:32], bytes(16)), mode=None).encryptor()
    ct = stream.update(pt)
    tag = hmac.new(keys[32:], struct.pack("<III", 7, 1, 2) + ct, "sha256").digest()[:16]
    assert box == ct + tag
    assert sa.box_open(chan, 7, 1, 2, box) == pt
    # Shamir: p_i(x) = secret_i + sum_j c_ji x^j, the c from ChaCha20(poly key)
    secret, key, t = bytes(range(100, 132)), bytes(32), 4
    coef = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor().update(
        bytes((t - 1) * 32))
    for x in (1, 2, 77, 255):
        want = bytearray(secret)
        xj = 1
        for j in range(1, t):
            xj = _gf_mul(xj, x)
            for i in range(32):
                want[i] ^= _gf_mul(coef[(j - 1) * 32 + i], xj)
        assert sa.shamir_share(secret, t, key, x) == bytes(want)
    shares = [sa.shamir_share(secret, t, key, x) for x in (3, 5, 8, 13)]
    assert sa.shamir_recover([3, 5, 8, 13], shares) == secret
    assert sa.shamir_recover([3, 5, 8], shares[:3]) != secret


def test_index_set_is_algorithm_s_over_the_keystream():
    seed, rnd, n, k = 1234, 5, 200, 30
    key = _hkdf(struct.pack("<I", seed), b"indx" + struct.pack("<I", rnd))
    words = np.frombuffer(Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
                          .update(bytes(4 * n)), dtype="<u4")
    want, kept = [], 0
    for i in range(n):
        if kept < k and int(words[i]) * (n - i) < (k - kept) << 32:
            want.append(i)
            kept += 1
    assert sa.index_set(seed, rnd, n, k).tolist() == want and len(want) == k


def test_a_threshold_below_a_majority_of_the_peers_is_refused():
    """t must be a majority of each device's n - 1 peers (2t > n - 1): below it a server that
    tells two groups different survivor lists could collect both of one device's secrets. The
    server refuses to build such a COHORT, and the C codec (the devices' decoder) refuses it."""
    with pytest.raises(SecAggError, match="must be a majority"):
        _shared(list(range(1, 8)), round=1, epoch=1, n_params=50, k=8, clip=1.0,
                index_seed=1, t=3)
    srv, _devs = _shared(list(range(1, 8)), round=1, epoch=1, n_params=50, k=8, clip=1.0,
                         index_seed=1)
    assert srv.cohort_msg.t == 4
    with pytest.raises(CryptoError, match="FLT_ERR_RANGE"):
        sa.encode_cohort(replace(srv.cohort_msg, t=3))
