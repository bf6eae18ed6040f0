"""X25519 (RFC 7748), ChaCha20 (RFC 8439) and HKDF-SHA256 (RFC 5869) of firmware/runtime/crypto,
through the binding (fltiny.native.crypto): the RFCs' test vectors, and agreement with the
``cryptography`` package (OpenSSL) on random inputs."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fltiny.native import crypto as cr
from fltiny.native import lib as L

H = bytes.fromhex

# RFC 7748 section 5.2: (scalar, u, X25519(scalar, u))
X25519_VECTORS = [
    ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
]
# RFC 7748 section 5.2, the iterated function: k = u = 9, then (k, u) = (X25519(k, u), k)
X25519_ITERATED = {
    1: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
    1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
}
# RFC 7748 section 6.1
ALICE_SK = H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PK = H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_SK = H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PK = H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

# RFC 8439 section 2.3.2 (block function) and 2.4.2 (encryption, initial counter 1)
CHACHA_KEY = bytes(range(32))
BLOCK_NONCE = H("000000090000004a00000000")
BLOCK_OUT = H("10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
              "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e")
ENC_NONCE = H("000000000000004a00000000")
SUNSCREEN = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
             b"the future, sunscreen would be it.")
SUNSCREEN_CT = H(
    "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
    "5af90bbf74a35be6b40b8eedf2785e42874d")

# RFC 5869 appendix A.1-A.3: (ikm, salt, info, length, prk, okm)
HKDF_VECTORS = [
    (b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    (bytes(range(0x50)), bytes(range(0x60, 0xB0)), bytes(range(0xB0, 0x100)), 82,
     "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
     "cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    (b"\x0b" * 22, b"", b"", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
]


def test_constants_match_the_c():
    assert L.const("FLT_X25519_SIZE") == cr.KEY_SIZE
    assert L.const("FLT_CHACHA20_BLOCK_SIZE") == cr.BLOCK_SIZE
    assert L.const("FLT_HKDF_MAX_OKM") == 255 * 32


@pytest.mark.parametrize("scalar,u,out", X25519_VECTORS)
def test_x25519_rfc7748_vectors(scalar, u, out):
    assert cr.x25519(H(scalar), H(u)).hex() == out


def test_x25519_rfc7748_iterated_1000():
    k = u = (9).to_bytes(32, "little")
    for i in range(1, 1001):
        k, u = cr.x25519(k, u), k
        if i in X25519_ITERATED:
            assert k.hex() == X25519_ITERATED[i], f"after {i} iterations"


def test_x25519_rfc7748_diffie_hellman():
    assert cr.x25519_public(ALICE_SK) == ALICE_PK
    assert cr.x25519_public(BOB_SK) == BOB_PK
    assert cr.x25519_shared(ALICE_SK, BOB_PK) == SHARED
    assert cr.x25519_shared(BOB_SK, ALICE_PK) == SHARED


def test_x25519_matches_cryptography_on_random_keys():
    rng = random.Random(7748)
    for _ in range(200):
        a, b = rng.randbytes(32), rng.randbytes(32)
        pk_b = X25519PrivateKey.from_private_bytes(b).public_key().public_bytes_raw()
        assert cr.x25519_public(b) == pk_b
        want = X25519PrivateKey.from_private_bytes(a).exchange(X25519PublicKey.from_public_bytes(pk_b))
        assert cr.x25519_shared(a, pk_b) == want


def test_x25519_matches_cryptography_on_random_u():
    """Arbitrary 32-byte u: top bit set, non-canonical (>= p) values, points on the twist."""
    rng = random.Random(25519)
    p = 2**255 - 19
    us = [rng.randbytes(32) for _ in range(200)]
    us += [(p + i).to_bytes(32, "little") for i in (2, 9, 18)]  # non-canonical (p + 1 = 1: small order)
    us += [(2**256 - 1 - i).to_bytes(32, "little") for i in range(3)]
    for u in us:
        k = rng.randbytes(32)
        want = X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(u))
        assert cr.x25519(k, u) == want, u.hex()


@pytest.mark.parametrize("u", [0, 1])
def test_x25519_shared_rejects_small_order_points(u):
    with pytest.raises(cr.CryptoError, match="FLT_ERR_ARG"):
        cr.x25519_shared(bytes(range(32)), u.to_bytes(32, "little"))


def test_chacha20_rfc8439_block_function():
    assert cr.chacha20_block(CHACHA_KEY, 1, BLOCK_NONCE) == BLOCK_OUT


def test_chacha20_rfc8439_encryption():
    assert cr.ChaCha20(CHACHA_KEY, ENC_NONCE, counter=1).xor(SUNSCREEN) == SUNSCREEN_CT
    assert cr.ChaCha20(CHACHA_KEY, ENC_NONCE, counter=1).xor(SUNSCREEN_CT) == SUNSCREEN


def _openssl_keystream(key: bytes, nonce: bytes, counter: int, n: int) -> bytes:
    """cryptography's ChaCha20 takes a 16-byte nonce: the 4-byte LE counter, then the nonce."""
    enc = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce), mode=None).encryptor()
    return enc.update(bytes(n))


def test_chacha20_matches_cryptography_on_random_inputs():
    rng = random.Random(8439)
    for _ in range(100):
        key, nonce = rng.randbytes(32), rng.randbytes(12)
        counter = rng.choice([0, 1, rng.randrange(2**32 - 64)])
        n = rng.randrange(1, 700)
        want = _openssl_keystream(key, nonce, counter, n)
        assert cr.ChaCha20(key, nonce, counter).read(n) == want
        assert cr.chacha20_block(key, counter, nonce) == _openssl_keystream(key, nonce, counter, 64)
        # the reader continues across calls of any size
        s = cr.ChaCha20(key, nonce, counter)
        parts, left = [], n
        while left:
            step = min(left, rng.choice([1, 3, 63, 64, 65, 130]))
            parts.append(s.read(step))
            left -= step
        assert b"".join(parts) == want


def test_chacha20_counter_never_wraps():
    key, nonce = bytes(32), bytes(12)
    s = cr.ChaCha20(key, nonce, counter=2**32 - 1)
    with pytest.raises(cr.CryptoError, match="FLT_ERR_RANGE"):
        s.read(65)
    assert s.read(64) == cr.chacha20_block(key, 2**32 - 1, nonce)  # unchanged by the refusal
    with pytest.raises(cr.CryptoError, match="FLT_ERR_RANGE"):
        s.read(1)
    last_two = cr.ChaCha20(key, nonce, counter=2**32 - 2).read(128)  # up to the last block
    assert last_two[64:] == cr.chacha20_block(key, 2**32 - 1, nonce)


@pytest.mark.parametrize("ikm,salt,info,length,prk,okm", HKDF_VECTORS)
def test_hkdf_rfc5869_vectors(ikm, salt, info, length, prk, okm):
    assert cr.hkdf_extract(salt, ikm).hex() == prk
    assert cr.hkdf_expand(H(prk), info, length).hex() == okm
    assert cr.hkdf(salt, ikm, info, length).hex() == okm


def test_hkdf_matches_cryptography_and_limits():
    rng = random.Random(5869)
    for _ in range(50):
        ikm, salt, info = rng.randbytes(rng.randrange(80)), rng.randbytes(rng.randrange(80)), \
            rng.randbytes(rng.randrange(80))
        n = rng.randrange(1, 600)
        want = HKDF(algorithm=hashes.SHA256(), length=n, salt=salt or None, info=info).derive(ikm)
        assert cr.hkdf(salt, ikm, info, n) == want
    assert len(cr.hkdf(b"s", b"k", b"i", 255 * 32)) == 255 * 32
    assert cr.hkdf(b"s", b"k", b"i", 0) == b""
    with pytest.raises(cr.CryptoError, match="FLT_ERR_RANGE"):
        cr.hkdf(b"s", b"k", b"i", 255 * 32 + 1)
