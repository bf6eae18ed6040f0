"""The runtime's crypto primitives (firmware/runtime/crypto) bound: what a device computes for
secure aggregation, so the host and the simulator use the same C.

- ``x25519`` / ``x25519_public`` / ``x25519_shared``: RFC 7748 (``flt_x25519*``);
  ``x25519_shared`` raises ``CryptoError`` for a small-order peer key (all-zero result).
- ``chacha20_block`` (RFC 8439 section 2.3) and ``ChaCha20`` (a keystream reader over one
  ``flt_chacha20_t``: ``read`` / ``xor`` continue where the last call stopped).
- ``hkdf_extract`` / ``hkdf_expand`` / ``hkdf``: HKDF-SHA256 (RFC 5869).
- ``secagg_pair_key`` / ``secagg_mask``: the pairwise masks of secure aggregation
  (crypto/secagg_mask.h, docs/protocol.md "Secure aggregation (design)").
Independent Python versions exist only in the tests (the ``cryptography`` package as oracle).
"""

from __future__ import annotations

import ctypes as C
from collections.abc import Sequence

import numpy as np

from fltiny.errors import FltinyError
from fltiny.native import lib as L
from fltiny.native.status import status_name

KEY_SIZE = 32  # FLT_X25519_SIZE, FLT_CHACHA20_KEY_SIZE (asserted against the C in the tests)
NONCE_SIZE = 12
BLOCK_SIZE = 64


class CryptoError(FltinyError):
    """A crypto call the C refused (``status``: the flt_status_t name)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{message} ({status})")
        self.status = status


def _ok(code: int, what: str) -> None:
    if code != 0:
        raise CryptoError(status_name(code), f"{what} failed")


def _fixed(data: bytes, n: int, name: str) -> bytes:
    data = bytes(data)
    if len(data) != n:
        raise CryptoError("FLT_ERR_ARG", f"{name} must be {n} bytes, got {len(data)}")
    return data


def x25519(scalar: bytes, u: bytes) -> bytes:
    """X25519(scalar, u) of RFC 7748 (scalar clamped by the C)."""
    out = C.create_string_buffer(KEY_SIZE)
    L.rt().flt_x25519(out, _fixed(scalar, KEY_SIZE, "scalar"), _fixed(u, KEY_SIZE, "u"))
    return out.raw


def x25519_public(secret: bytes) -> bytes:
    out = C.create_string_buffer(KEY_SIZE)
    L.rt().flt_x25519_public(out, _fixed(secret, KEY_SIZE, "secret"))
    return out.raw


def x25519_shared(secret: bytes, peer: bytes) -> bytes:
    """The shared secret with ``peer``'s public key; CryptoError when it is all zeros."""
    out = C.create_string_buffer(KEY_SIZE)
    _ok(L.rt().flt_x25519_shared(out, _fixed(secret, KEY_SIZE, "secret"),
                                 _fixed(peer, KEY_SIZE, "peer key")), "x25519 shared secret")
    return out.raw


def chacha20_block(key: bytes, counter: int, nonce: bytes) -> bytes:
    if not 0 <= counter < 2**32:
        raise CryptoError("FLT_ERR_RANGE", f"block counter {counter} is not a uint32")
    out = C.create_string_buffer(BLOCK_SIZE)
    L.rt().flt_chacha20_block(_fixed(key, KEY_SIZE, "key"), counter,
                              _fixed(nonce, NONCE_SIZE, "nonce"), out)
    return out.raw


class ChaCha20:
    """A ChaCha20 keystream from block ``counter`` on (RFC 8439 encryption starts at 1)."""

    def __init__(self, key: bytes, nonce: bytes, counter: int = 0) -> None:
        if not 0 <= counter < 2**32:
            raise CryptoError("FLT_ERR_RANGE", f"block counter {counter} is not a uint32")
        self._ctx = L.ChaCha20()
        L.rt().flt_chacha20_init(C.byref(self._ctx), _fixed(key, KEY_SIZE, "key"),
                                 _fixed(nonce, NONCE_SIZE, "nonce"), counter)

    def read(self, n: int) -> bytes:
        out = C.create_string_buffer(max(n, 1))
        _ok(L.rt().flt_chacha20_read(C.byref(self._ctx), out, n), "chacha20 keystream")
        return out.raw[:n]

    def xor(self, data: bytes) -> bytes:
        data = bytes(data)
        out = C.create_string_buffer(max(len(data), 1))
        _ok(L.rt().flt_chacha20_xor(C.byref(self._ctx), data, out, len(data)), "chacha20 xor")
        return out.raw[:len(data)]

    def __del__(self) -> None:
        if hasattr(self, "_ctx"):
            L.rt().flt_chacha20_wipe(C.byref(self._ctx))


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    prk = C.create_string_buffer(32)
    L.rt().flt_hkdf_extract(bytes(salt), len(salt), bytes(ikm), len(ikm), prk)
    return prk.raw


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out = C.create_string_buffer(max(length, 1))
    _ok(L.rt().flt_hkdf_expand(_fixed(prk, 32, "prk"), bytes(info), len(info), out, length),
        "hkdf expand")
    return out.raw[:length]


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    out = C.create_string_buffer(max(length, 1))
    _ok(L.rt().flt_hkdf(bytes(salt), len(salt), bytes(ikm), len(ikm), bytes(info), len(info),
                        out, length), "hkdf")
    return out.raw[:length]


def secagg_pair_key(shared: bytes, round_: int, a: int, b: int) -> bytes:
    """The mask key of devices a and b in one round (the same for both)."""
    key = C.create_string_buffer(32)
    _ok(L.rt().flt_secagg_pair_key(_fixed(shared, KEY_SIZE, "shared secret"), round_, a, b, key),
        "secagg pair key")
    return key.raw


def secagg_mask(self_id: int, round_: int, peers: Sequence[tuple[int, bytes]],
                values: np.ndarray) -> np.ndarray:
    """``values`` (uint32, the device's quantized update on the round's shared index set) plus
    the pairwise masks with ``peers`` [(peer id, X25519 shared secret)], mod 2^32."""
    out = np.ascontiguousarray(values, dtype=np.uint32).copy()
    arr = (L.SecaggPeer * max(len(peers), 1))()
    for i, (pid, shared) in enumerate(peers):
        arr[i].id = pid
        C.memmove(arr[i].shared, _fixed(shared, KEY_SIZE, "shared secret"), KEY_SIZE)
    _ok(L.rt().flt_secagg_mask(self_id, round_, arr, len(peers), out.ctypes.data, out.size),
        "secagg mask")
    C.memset(arr, 0, C.sizeof(arr))
    return out
