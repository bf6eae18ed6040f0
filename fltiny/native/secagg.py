"""The runtime's secure aggregation (firmware/runtime/secagg) bound: the device's protocol state
(``SecAggDevice`` over one ``flt_secagg_client_t``), the message codecs, Shamir sharing, the
round's index set, the quantizer and the self mask, so the simulator, the server and the tests
run the C a board runs (docs/protocol.md "Secure aggregation").

Host code that is not a device (fltiny.privacy.secagg, the server) uses only the codecs and the
functions it needs to undo masks of dropped devices: ``shamir_recover``, ``x25519_*`` and
``secagg_mask`` of fltiny.native.crypto, ``self_mask``, ``index_set``. A ``SecAggDevice`` holds
its device secret inside its C struct; nothing here hands it out.
"""

from __future__ import annotations

import ctypes as C
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.native import lib as L
from fltiny.native.crypto import CryptoError, _fixed, _ok

KIND_SELF = 0  # FLT_SA_KIND_SELF: a share of a survivor's self-mask seed b
KIND_MASK = 1  # FLT_SA_KIND_MASK: a share of a dropped device's round mask secret s
BOX_SIZE = 80
SHARES_ENTRY = 84
REVEAL_ENTRY = 37
COHORT_ENTRY = 68


def max_cohort() -> int:
    return L.const("FLT_SECAGG_MAX_COHORT")


# ---- primitives -----------------------------------------------------------------------------


def shamir_share(secret: bytes, t: int, poly_key: bytes, x: int) -> bytes:
    if not 1 <= x <= 255:
        raise CryptoError("FLT_ERR_ARG", f"share x {x} is not in 1..255")
    out = C.create_string_buffer(max(len(secret), 1))
    _ok(L.rt().flt_shamir_share(bytes(secret), len(secret), t, _fixed(poly_key, 32, "poly key"),
                                x, out), "shamir share")
    return out.raw[:len(secret)]


def shamir_recover(xs: Sequence[int], shares: Sequence[bytes]) -> bytes:
    """The secret from t shares held at ``xs`` (1..255, distinct)."""
    if len(xs) != len(shares) or not shares:
        raise CryptoError("FLT_ERR_ARG", f"{len(xs)} x coordinates for {len(shares)} shares")
    n = len(shares[0])
    if any(len(s) != n for s in shares) or any(not 0 <= x <= 255 for x in xs):
        raise CryptoError("FLT_ERR_ARG", "shares of different lengths or x outside 0..255")
    out = C.create_string_buffer(max(n, 1))
    _ok(L.rt().flt_shamir_recover(bytes(xs), b"".join(shares), len(shares), n, out),
        "shamir recover")
    return out.raw[:n]


def derive(ikm: bytes, label: bytes, *fields: int, length: int = 32) -> bytes:
    out = C.create_string_buffer(length)
    f = [*fields, 0, 0, 0][:3]
    _ok(L.rt().flt_secagg_derive(bytes(ikm), len(ikm), bytes(label), f[0], f[1], f[2],
                                 len(fields), out, length), "secagg derive")
    return out.raw


def self_mask(seed: bytes, values: np.ndarray, add: bool) -> np.ndarray:
    out = np.ascontiguousarray(values, dtype=np.uint32).copy()
    _ok(L.rt().flt_secagg_self_mask(_fixed(seed, 32, "seed"), out.ctypes.data, out.size,
                                    int(add)), "secagg self mask")
    return out


def box_seal(chan: bytes, round_: int, src: int, dst: int, pt: bytes) -> bytes:
    out = C.create_string_buffer(BOX_SIZE)
    _ok(L.rt().flt_secagg_box_seal(_fixed(chan, 32, "channel secret"), round_, src, dst,
                                   _fixed(pt, 64, "plaintext"), out), "secagg box seal")
    return out.raw


def box_open(chan: bytes, round_: int, src: int, dst: int, box: bytes) -> bytes:
    out = C.create_string_buffer(64)
    _ok(L.rt().flt_secagg_box_open(_fixed(chan, 32, "channel secret"), round_, src, dst,
                                   _fixed(box, BOX_SIZE, "box"), out), "secagg box open")
    return out.raw


def index_set(seed: int, round_: int, n: int, k: int) -> np.ndarray:
    """The round's shared index set: k sorted distinct indices of 0..n-1 (input.h)."""
    out = np.zeros(max(k, 1), dtype=np.uint32)
    _ok(L.rt().flt_secagg_index_set(seed, round_, n, k, out.ctypes.data), "secagg index set")
    return out[:k]


def quantize(delta: np.ndarray, idx: np.ndarray, scale: float, qmax: int) -> np.ndarray:
    """The device's quantized values on ``idx`` (uint32, two's complement)."""
    d = np.ascontiguousarray(delta, dtype=np.float32)
    i = np.ascontiguousarray(idx, dtype=np.uint32)
    out = np.zeros(max(i.size, 1), dtype=np.uint32)
    _ok(L.rt().flt_secagg_quantize(d.ctypes.data, d.size, i.ctypes.data, i.size, scale, qmax,
                                   out.ctypes.data), "secagg quantize")
    return out[:i.size]


# ---- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advertise:
    epoch: int
    round: int
    chan_pk: bytes
    mask_pk: bytes


@dataclass(frozen=True)
class Member:
    id: int
    chan_pk: bytes
    mask_pk: bytes


@dataclass(frozen=True)
class Cohort:
    round: int
    epoch: int
    index_seed: int
    k: int
    scale: float
    qmax: int
    t: int
    w: int
    members: tuple[Member, ...]

    def x_of(self, device_id: int) -> int:
        """The Shamir x coordinate of a member: its 1-based position in the cohort."""
        return 1 + [m.id for m in self.members].index(device_id)


def _buf(n: int) -> tuple[C.Array, C.c_size_t]:
    return C.create_string_buffer(max(n, 1)), C.c_size_t(0)


def encode_begin(epoch: int, round_: int) -> bytes:
    out, n = _buf(8)
    _ok(L.rt().flt_sa_begin_encode(C.byref(L.SaBegin(epoch, round_)), out, 8, C.byref(n)),
        "BEGIN encode")
    return out.raw[:n.value]


def decode_advertise(payload: bytes) -> Advertise:
    m = L.SaAdvertise()
    _ok(L.rt().flt_sa_advertise_decode(bytes(payload), len(payload), C.byref(m)),
        "ADVERTISE decode")
    return Advertise(m.epoch, m.round, bytes(m.chan_pk), bytes(m.mask_pk))


def encode_cohort(c: Cohort) -> bytes:
    members = b"".join(m.id.to_bytes(4, "little") + _fixed(m.chan_pk, 32, "channel key")
                       + _fixed(m.mask_pk, 32, "mask key") for m in c.members)
    mb = C.create_string_buffer(members, max(len(members), 1))
    msg = L.SaCohort(c.round, c.epoch, c.index_seed, c.k, c.scale, c.qmax, c.t, len(c.members),
                     c.w, C.cast(mb, C.c_void_p))
    cap = 32 + len(members)
    out, n = _buf(cap)
    _ok(L.rt().flt_sa_cohort_encode(C.byref(msg), out, cap, C.byref(n)), "COHORT encode")
    return out.raw[:n.value]


def _entries(round_: int, entries: Sequence[tuple[int, bytes]], size: int, fn: str,
             struct: type) -> bytes:
    body = b"".join(i.to_bytes(4, "little") + e for i, e in entries)
    if any(len(e) != size - 4 for _i, e in entries):
        raise CryptoError("FLT_ERR_ARG", f"an entry is not {size - 4} bytes")
    eb = C.create_string_buffer(body, max(len(body), 1))
    msg = struct(round_, len(entries), C.cast(eb, C.c_void_p))
    cap = 8 + len(body)
    out, n = _buf(cap)
    _ok(getattr(L.rt(), fn)(C.byref(msg), out, cap, C.byref(n)), fn)
    return out.raw[:n.value]


def encode_shares(round_: int, entries: Sequence[tuple[int, bytes]]) -> bytes:
    """SHARES: [(peer id, 80-byte box)] in increasing id order."""
    return _entries(round_, entries, SHARES_ENTRY, "flt_sa_shares_encode", L.SaShares)


def decode_shares(payload: bytes) -> tuple[int, list[tuple[int, bytes]]]:
    m = L.SaShares()
    _ok(L.rt().flt_sa_shares_decode(bytes(payload), len(payload), C.byref(m)), "SHARES decode")
    body = bytes(payload[8:])
    return m.round, [(int.from_bytes(body[i:i + 4], "little"), body[i + 4:i + SHARES_ENTRY])
                     for i in range(0, m.count * SHARES_ENTRY, SHARES_ENTRY)]


def decode_masked(payload: bytes) -> tuple[int, int, np.ndarray]:
    """(round, w, values as uint32, each below 2^w)."""
    m = L.SaMasked()
    _ok(L.rt().flt_sa_masked_decode(bytes(payload), len(payload), C.byref(m)), "MASKED decode")
    dtype = {8: "u1", 16: "<u2", 32: "<u4"}[m.w]
    values = np.frombuffer(bytes(payload[12:]), dtype=dtype).astype(np.uint32)
    return m.round, m.w, values


def encode_unmask(round_: int, survivors: Sequence[int], dropped: Sequence[int]) -> bytes:
    ids = b"".join(int(i).to_bytes(4, "little") for i in [*survivors, *dropped])
    ib = C.create_string_buffer(ids, max(len(ids), 1))
    msg = L.SaUnmask(round_, len(survivors), len(dropped), C.cast(ib, C.c_void_p))
    cap = 8 + len(ids)
    out, n = _buf(cap)
    _ok(L.rt().flt_sa_unmask_encode(C.byref(msg), out, cap, C.byref(n)), "UNMASK encode")
    return out.raw[:n.value]


def decode_reveal(payload: bytes) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(round, [(id, kind, 32-byte share)])."""
    m = L.SaReveal()
    _ok(L.rt().flt_sa_reveal_decode(bytes(payload), len(payload), C.byref(m)), "REVEAL decode")
    body = bytes(payload[8:])
    return m.round, [(int.from_bytes(body[i:i + 4], "little"), body[i + 4],
                      body[i + 5:i + REVEAL_ENTRY])
                     for i in range(0, m.count * REVEAL_ENTRY, REVEAL_ENTRY)]


# ---- the device -----------------------------------------------------------------------------


class SecAggDevice:
    """One device's secure-aggregation state (firmware/runtime/secagg/client.h): every method
    takes a message payload from the host and returns the device's reply payload, computed by
    the C. The device secret is drawn here (``os.urandom``, standing in for the board's TRNG)
    and lives only in the C struct."""

    def __init__(self, device_id: int, secret: bytes | None = None) -> None:
        self.device_id = device_id
        self._c = L.SecaggClient()
        _ok(L.rt().flt_secagg_client_init(C.byref(self._c), device_id,
                                          _fixed(secret or os.urandom(32), 32, "secret")),
            "secagg client init")

    def begin(self, payload: bytes) -> bytes:
        b = L.SaBegin()
        _ok(L.rt().flt_sa_begin_decode(bytes(payload), len(payload), C.byref(b)), "BEGIN decode")
        adv = L.SaAdvertise()
        _ok(L.rt().flt_secagg_begin(C.byref(self._c), C.byref(b), C.byref(adv)), "secagg begin")
        out, n = _buf(72)
        _ok(L.rt().flt_sa_advertise_encode(C.byref(adv), out, 72, C.byref(n)), "ADVERTISE encode")
        return out.raw[:n.value]

    def cohort(self, payload: bytes) -> bytes:
        """COHORT in, this device's SHARES out."""
        buf = C.create_string_buffer(bytes(payload), max(len(payload), 1))
        co = L.SaCohort()
        _ok(L.rt().flt_sa_cohort_decode(buf, len(payload), C.byref(co)), "COHORT decode")
        _ok(L.rt().flt_secagg_cohort(C.byref(self._c), C.byref(co)), "secagg cohort")
        cap = SHARES_ENTRY * max_cohort()
        entries = C.create_string_buffer(cap)
        count = C.c_uint16(0)
        _ok(L.rt().flt_secagg_deal(C.byref(self._c), entries, cap, C.byref(count)), "secagg deal")
        body = entries.raw[:count.value * SHARES_ENTRY]
        return encode_shares(co.round, [(int.from_bytes(body[i:i + 4], "little"),
                                         body[i + 4:i + SHARES_ENTRY])
                                        for i in range(0, len(body), SHARES_ENTRY)])

    def receive(self, payload: bytes) -> None:
        buf = C.create_string_buffer(bytes(payload), max(len(payload), 1))
        sh = L.SaShares()
        _ok(L.rt().flt_sa_shares_decode(buf, len(payload), C.byref(sh)), "SHARES decode")
        _ok(L.rt().flt_secagg_receive(C.byref(self._c), C.byref(sh)), "secagg receive")

    def params(self) -> dict[str, float | int]:
        """The round's public parameters the device took from COHORT."""
        c = self._c
        return {"round": c.round, "k": c.k, "index_seed": c.index_seed, "scale": c.scale,
                "qmax": c.qmax, "w": c.w}

    def masked(self, values: np.ndarray) -> bytes:
        """MASKED: the quantized values (uint32, on the index set) masked, low w bits sent."""
        v = np.ascontiguousarray(values, dtype=np.uint32).copy()
        _ok(L.rt().flt_secagg_mask_input(C.byref(self._c), v.ctypes.data, v.size),
            "secagg mask input")
        w = self._c.w
        cap = 12 + v.size * w // 8
        out, n = _buf(cap)
        _ok(L.rt().flt_sa_masked_encode(self._c.round, w, v.ctypes.data, v.size, out, cap,
                                        C.byref(n)), "MASKED encode")
        return out.raw[:n.value]

    def unmask(self, payload: bytes) -> bytes:
        """UNMASK in, REVEAL out."""
        buf = C.create_string_buffer(bytes(payload), max(len(payload), 1))
        u = L.SaUnmask()
        _ok(L.rt().flt_sa_unmask_decode(buf, len(payload), C.byref(u)), "UNMASK decode")
        rnd = u.round
        cap = REVEAL_ENTRY * max_cohort()
        entries = C.create_string_buffer(cap)
        count = C.c_uint16(0)
        _ok(L.rt().flt_secagg_unmask(C.byref(self._c), C.byref(u), entries, cap, C.byref(count)),
            "secagg unmask")
        body = entries.raw[:count.value * REVEAL_ENTRY]
        eb = C.create_string_buffer(body, max(len(body), 1))
        msg = L.SaReveal(rnd, count.value, C.cast(eb, C.c_void_p))
        out, n = _buf(8 + len(body))
        _ok(L.rt().flt_sa_reveal_encode(C.byref(msg), out, 8 + len(body), C.byref(n)),
            "REVEAL encode")
        return out.raw[:n.value]

    def __del__(self) -> None:
        if hasattr(self, "_c"):
            L.rt().flt_secagg_client_wipe(C.byref(self._c))
