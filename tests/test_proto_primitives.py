"""SHA-256, HMAC-SHA256, CRC-32 and COBS of firmware/runtime/proto against hashlib, hmac,
zlib, the published test vectors (FIPS 180-4 examples, RFC 4231) and the Python twin."""

from __future__ import annotations

import ctypes as C
import hashlib
import hmac
import random
import zlib

import pytest
from oracles import cobs
from test_proto_native import lib

# FIPS 180-4 / NIST CSRC examples
SHA256_VECTORS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
     b"lmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]

# RFC 4231 test cases 1-4, 6, 7 (case 5 is a truncated tag, covered by the frame tests)
HMAC_VECTORS = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def c_sha256(data: bytes) -> bytes:
    out = C.create_string_buffer(32)
    lib().flt_sha256(data, len(data), out)
    return out.raw


def c_hmac(key: bytes, data: bytes) -> bytes:
    out = C.create_string_buffer(32)
    lib().flt_hmac_sha256(key, len(key), data, len(data), out)
    return out.raw


def c_cobs(fn: str, data: bytes, cap: int | None = None) -> tuple[int, bytes]:
    cap = cobs.max_encoded(len(data)) if cap is None else cap
    out = (C.c_uint8 * max(cap, 1))()
    n = C.c_size_t(0)
    st = getattr(lib(), fn)(data, C.c_size_t(len(data)), out, C.c_size_t(cap), C.byref(n))
    return st, bytes(out[: n.value])


@pytest.mark.parametrize("data,digest", SHA256_VECTORS, ids=lambda v: str(len(v))[:8])
def test_sha256_published_vectors(data, digest):
    assert c_sha256(data).hex() == digest


@pytest.mark.parametrize("key,data,mac", HMAC_VECTORS)
def test_hmac_rfc4231(key, data, mac):
    assert c_hmac(key, data).hex() == mac


def test_sha256_hmac_random_against_hashlib():
    rng = random.Random(1)
    # every length around the 55/56/64-byte padding boundaries, then random ones
    lengths = list(range(0, 200)) + [rng.randrange(0, 5000) for _ in range(300)]
    for n in lengths:
        data = rng.randbytes(n)
        key = rng.randbytes(rng.choice([0, 1, 16, 32, 63, 64, 65, 200]))
        assert c_sha256(data) == hashlib.sha256(data).digest(), n
        assert c_hmac(key, data) == hmac.new(key, data, hashlib.sha256).digest(), n


def test_sha256_streaming_in_odd_pieces():
    class Sha(C.Structure):
        _fields_ = [("h", C.c_uint32 * 8), ("total", C.c_uint64), ("block", C.c_uint8 * 64),
                    ("fill", C.c_uint32)]

    rng = random.Random(2)
    data = rng.randbytes(3000)
    ctx = Sha()
    lib().flt_sha256_init(C.byref(ctx))
    i = 0
    while i < len(data):
        step = rng.choice([0, 1, 3, 63, 64, 65, 200])
        piece = data[i : i + step]
        lib().flt_sha256_update(C.byref(ctx), piece, C.c_size_t(len(piece)))
        i += step
    out = C.create_string_buffer(32)
    lib().flt_sha256_final(C.byref(ctx), out)
    assert out.raw == hashlib.sha256(data).digest()


def test_crc32_against_zlib():
    rng = random.Random(3)
    assert lib().flt_crc32_update(0, b"123456789", 9) == 0xCBF43926  # the check value
    for n in list(range(70)) + [rng.randrange(0, 4000) for _ in range(200)]:
        data = rng.randbytes(n)
        assert lib().flt_crc32_update(0, data, n) == zlib.crc32(data)
        cut = n // 3
        first = lib().flt_crc32_update(0, data[:cut], cut)
        assert lib().flt_crc32_update(first, data[cut:], n - cut) == zlib.crc32(data)


COBS_CASES = {
    "empty": b"",
    "zero": b"\x00",
    "two_zeros": b"\x00\x00",
    "run_253": b"\x01" * 253,
    "run_254": b"\x02" * 254,
    "run_255": b"\x03" * 255,
    "run_254_zero": b"\x04" * 254 + b"\x00",
    "run_255_zero_run": b"\x05" * 255 + b"\x00" + b"\x06" * 254,
    "zero_run_254": b"\x00" + b"\x07" * 254,
    "run_508": b"\x08" * 508,
    "mixed": bytes(range(256)) * 3,
}


@pytest.mark.parametrize("data", COBS_CASES.values(), ids=COBS_CASES.keys())
def test_cobs_round_trip_and_twin(data):
    enc = cobs.encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs.max_encoded(len(data))
    st, c_enc = c_cobs("flt_cobs_encode", data)
    assert st == 0 and c_enc == enc
    assert cobs.decode(enc) == data
    st, c_dec = c_cobs("flt_cobs_decode", enc, cap=len(data))
    assert st == 0 and c_dec == data
    if data:  # one byte short of the output: NOMEM, for both directions
        assert c_cobs("flt_cobs_encode", data, cap=len(enc) - 1)[0] == 8
        assert c_cobs("flt_cobs_decode", enc, cap=len(data) - 1)[0] == 8


def test_cobs_known_encodings():
    assert cobs.encode(b"\x02" * 254) == b"\xff" + b"\x02" * 254 + b"\x01"
    assert cobs.encode(b"\x11\x00\x22") == b"\x02\x11\x02\x22"
    assert cobs.encode(b"") == b"\x01"


def test_cobs_random_round_trip_and_invalid_input():
    rng = random.Random(4)
    for _ in range(400):
        n = rng.randrange(0, 1200)
        density = rng.choice([0.0, 0.001, 0.1, 0.5])
        data = bytes(0 if rng.random() < density else rng.randrange(1, 256) for _ in range(n))
        enc = cobs.encode(data)
        assert c_cobs("flt_cobs_encode", data)[1] == enc
        assert c_cobs("flt_cobs_decode", enc, cap=n)[1] == data
    for bad in (b"\x05\x01\x02", b"\x00", b"\x03\x01\x00", b"\xff" + b"\x01" * 10):
        assert c_cobs("flt_cobs_decode", bad, cap=400)[0] == 6  # FLT_ERR_FORMAT
        with pytest.raises(cobs.CobsDecodeError):
            cobs.decode(bad)
