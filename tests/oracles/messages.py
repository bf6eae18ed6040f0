"""Oracle of the payloads of the protocol messages, version 3 (tests only).

An independent Python implementation of firmware/runtime/proto/messages.c; byte layout in
docs/protocol.md, "Messages".
The payload of DELTA (and of a GLOBAL of kind DELTA) is the delta payload of docs/protocol.md
(tests/oracles/payload.py); this layer checks only its size and magic. Each dataclass has
``encode()`` and ``decode(buf)``; both validate exactly like the C codecs, field by field in
wire order, and raise the ProtocolError subclass whose ``status`` the C codec returns.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from oracles.protocol import (
    ArgumentError,
    MalformedError,
    MsgType,
    NonFiniteError,
    OutOfRangeError,
    OversizeError,
    TruncatedError,
    UnsupportedError,
)

NAME_SIZE = 16
HASH_SIZE = 8
MAX_TEXT = 128
HELLO_SIZE = 48
GLOBAL_HEADER_SIZE = 12
TRAIN_SIZE = 36
DELTA_HEADER_MIN = 8  # 3 one-byte varints, loss, personal_n 0 (no metric field)
ACK_SIZE = 5
DISABLE_SIZE = 4
DELTA_PAYLOAD_MIN = 4  # the smallest delta payload header
DELTA_PAYLOAD_VERSION = 3  # the top nibble of its first byte

CAP_TRAIN_HEAD = 0x01
CAP_DELTA_BLOCK = 0x02
CAP_GLOBAL_DELTA = 0x04

TRAIN_DRIFT = 0x01  # drift control (FedDyn): the device uses and updates its drift state
TRAIN_PERSONAL = 0x02  # the device serves the local model of its last round
TRAIN_NO_FEEDBACK = 0x04  # no error feedback: the device sends top-k of this round's delta only
TRAIN_BITS_SHIFT, TRAIN_BITS_MASK = 8, 0xF00  # the DELTA's value width, 2..8 (0: 8)
TRAIN_RESET = 0x10  # the round starts from a fresh state (the host could not replay the last)
TRAIN_SELECT = 0x20  # with PERSONAL: serve the better of local and global on a validation split
TRAIN_SECAGG = 0x80  # a masked round: the DELTA carries an empty body (docs/protocol.md)
# bits 16-23: the self-check drop in hundredths of the personal metric, 0..100 (0: none)
TRAIN_CHECK_SHIFT, TRAIN_CHECK_MASK, TRAIN_CHECK_MAX = 16, 0xFF0000, 100
TRAIN_FLAGS_KNOWN = (TRAIN_DRIFT | TRAIN_PERSONAL | TRAIN_NO_FEEDBACK | TRAIN_RESET
                     | TRAIN_SELECT | TRAIN_SECAGG | TRAIN_BITS_MASK | TRAIN_CHECK_MASK)

ACK_ACCEPTED = 0
ACK_DUPLICATE = 1


class GlobalKind(enum.IntEnum):
    FULL = 0
    DELTA = 1


class TopkKind(enum.IntEnum):
    COUNT = 0
    FRACTION = 1


def _f32(value: float, field: str) -> float:
    """value rounded to float32 (what the C side stores)."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        raise NonFiniteError(f"{field} = {value} overflows float32") from None


def _round_f32_fields(obj: object, fields: tuple[str, ...]) -> None:
    """Stores float fields as their float32 value (what goes on the wire), so a message equals
    its decoded copy. Values outside float32 stay as given; encode() rejects them."""
    for f in fields:
        v = getattr(obj, f)
        if v is None:
            continue
        try:
            object.__setattr__(obj, f, struct.unpack("<f", struct.pack("<f", v))[0])
        except (OverflowError, struct.error):
            pass


def _check_f32(value: float, ok: bool, field: str) -> None:
    if not math.isfinite(value):
        raise NonFiniteError(f"{field} is not finite ({value})")
    if not ok:
        raise OutOfRangeError(f"{field} = {value} out of range")


def _fixed(buf: bytes, size: int, what: str) -> None:
    if len(buf) < size:
        raise TruncatedError(f"{what} payload of {len(buf)} bytes, {size} expected")
    if len(buf) > size:
        raise MalformedError(f"{what} payload of {len(buf)} bytes, {size} expected")


def _u32(v: int, field: str) -> int:
    if not 0 <= v <= 0xFFFFFFFF:
        raise ArgumentError(f"{field} = {v} does not fit in 32 bits")
    return v


def _check_delta_body(body: bytes) -> None:
    if len(body) < DELTA_PAYLOAD_MIN:
        raise TruncatedError(f"delta payload of {len(body)} bytes, at least "
                             f"{DELTA_PAYLOAD_MIN} expected")
    if body[0] >> 4 != DELTA_PAYLOAD_VERSION:  # a version-2 payload starts with "FD"
        raise MalformedError("delta payload of another version (not 3)")


# ---- HELLO ----------------------------------------------------------------------------


def _check_name(raw: bytes) -> str:
    n = raw.find(b"\x00")
    n = len(raw) if n < 0 else n
    name = raw[:n]
    if any(not 0x20 <= c <= 0x7E for c in name):
        raise MalformedError("board name has non-printable bytes")
    if n == 0:
        raise MalformedError("empty board name")
    if any(raw[n:]):
        raise MalformedError("data after the board name's NUL padding")
    return name.decode("ascii")


@dataclass(frozen=True)
class Hello:
    TYPE: ClassVar[MsgType] = MsgType.HELLO
    name: str
    capabilities: int
    firmware_version: int
    model_hash: bytes
    model_version: int
    head_params: int
    free_ram: int
    host_seq: int = 0

    def encode(self) -> bytes:
        try:
            raw = self.name.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedError("board name is not ASCII") from None
        if len(raw) > NAME_SIZE:
            raise MalformedError(f"board name longer than {NAME_SIZE} bytes")
        raw = raw.ljust(NAME_SIZE, b"\x00")
        _check_name(raw)
        if len(self.model_hash) != HASH_SIZE:
            raise ArgumentError(f"model hash must be {HASH_SIZE} bytes")
        vals = [_u32(getattr(self, f), f) for f in
                ("capabilities", "firmware_version", "model_version", "head_params", "free_ram",
                 "host_seq")]
        return (raw + struct.pack("<II", vals[0], vals[1]) + bytes(self.model_hash)
                + struct.pack("<IIII", *vals[2:]))

    @classmethod
    def decode(cls, buf: bytes) -> Hello:
        _fixed(buf, HELLO_SIZE, "HELLO")
        name = _check_name(buf[:NAME_SIZE])
        caps, fw = struct.unpack_from("<II", buf, 16)
        mv, hp, ram, host_seq = struct.unpack_from("<IIII", buf, 32)
        return cls(name, caps, fw, bytes(buf[24:32]), mv, hp, ram, host_seq)


# ---- GLOBAL / DELTA -------------------------------------------------------------------


@dataclass(frozen=True)
class Global:
    TYPE: ClassVar[MsgType] = MsgType.GLOBAL
    model_version: int
    base_version: int
    kind: int
    body: bytes

    @classmethod
    def full(cls, model_version: int, params: np.ndarray) -> Global:
        return cls(model_version, 0, GlobalKind.FULL,
                   np.ascontiguousarray(params, dtype="<f4").tobytes())

    @classmethod
    def delta(cls, model_version: int, base_version: int, payload: bytes) -> Global:
        return cls(model_version, base_version, GlobalKind.DELTA, bytes(payload))

    @property
    def params(self) -> np.ndarray:
        """The float32 parameters of a FULL global."""
        return np.frombuffer(self.body, dtype="<f4").astype(np.float32)

    def _check(self) -> None:
        if self.kind == GlobalKind.FULL:
            if self.base_version != 0:
                raise MalformedError("full GLOBAL with a nonzero base version")
            if not self.body or len(self.body) % 4:
                raise MalformedError(f"full GLOBAL body of {len(self.body)} bytes "
                                     "(not a positive multiple of 4)")
            bits = np.frombuffer(self.body, dtype="<u4")
            if np.any((bits & 0x7F800000) == 0x7F800000):
                raise NonFiniteError("full GLOBAL has a non-finite parameter")
            return
        if self.kind != GlobalKind.DELTA:
            raise UnsupportedError(f"unknown GLOBAL kind {self.kind}")
        if self.base_version >= self.model_version:
            raise OutOfRangeError(f"delta GLOBAL base version {self.base_version} >= model "
                                  f"version {self.model_version}")
        _check_delta_body(self.body)

    def encode(self) -> bytes:
        head = struct.pack("<IIB3x", _u32(self.model_version, "model_version"),
                           _u32(self.base_version, "base_version"), self.kind & 0xFF)
        self._check()
        return head + bytes(self.body)

    @classmethod
    def decode(cls, buf: bytes) -> Global:
        if len(buf) < GLOBAL_HEADER_SIZE:
            raise TruncatedError(f"GLOBAL payload of {len(buf)} bytes")
        mv, bv, kind = struct.unpack_from("<IIB", buf)
        if any(buf[9:12]):
            raise MalformedError("GLOBAL reserved bytes set")
        msg = cls(mv, bv, kind, bytes(buf[GLOBAL_HEADER_SIZE:]))
        msg._check()
        return msg


@dataclass(frozen=True)
class Delta:
    TYPE: ClassVar[MsgType] = MsgType.DELTA
    round: int
    base_version: int
    examples: int
    loss: float
    body: bytes
    personal_n: int = 0  # personal test windows evaluated before training (0: none)
    personal_metric: float = 0.0  # accuracy or MAE of the served model on them

    def __post_init__(self) -> None:
        _round_f32_fields(self, ("loss", "personal_metric"))

    def _check(self, loss: float, personal: float) -> None:
        if self.examples < 1:
            raise OutOfRangeError("DELTA with no examples")
        _check_f32(loss, loss >= 0.0, "loss")
        _check_f32(personal, personal >= 0.0 and (self.personal_n > 0 or personal == 0.0),
                   "personal_metric")
        if self.body:  # empty: a masked round's DELTA (its update travels in SECAGG)
            _check_delta_body(self.body)

    def encode(self) -> bytes:
        loss = _f32(self.loss, "loss")
        personal = _f32(self.personal_metric, "personal_metric")
        head = (_leb(_u32(self.round, "round")) + _leb(_u32(self.base_version, "base_version"))
                + _leb(_u32(self.examples, "examples")) + struct.pack("<f", loss)
                + _leb(_u32(self.personal_n, "personal_n")))
        self._check(loss, personal)
        if self.personal_n > 0:
            head += struct.pack("<f", personal)
        return head + bytes(self.body)

    @classmethod
    def decode(cls, buf: bytes) -> Delta:
        buf = bytes(buf)
        pos = 0

        def f32() -> float:
            nonlocal pos
            if len(buf) - pos < 4:
                raise TruncatedError(f"DELTA head runs past its {len(buf)} bytes")
            pos += 4
            return struct.unpack_from("<f", buf, pos - 4)[0]

        r, pos = _unleb(buf, pos)
        bv, pos = _unleb(buf, pos)
        ex, pos = _unleb(buf, pos)
        loss = f32()
        pn, pos = _unleb(buf, pos)
        pm = f32() if pn > 0 else 0.0
        msg = cls(r, bv, ex, loss, buf[pos:], pn, pm)
        msg._check(loss, pm)
        return msg


def _leb(v: int) -> bytes:
    """LEB128 of a u32 (docs/protocol.md "Header"), minimal."""
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _unleb(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after) of the LEB128 u32 at buf[pos:]: TruncatedError when it runs
    past the end, MalformedError when overlong or above 32 bits."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise TruncatedError("DELTA head varint runs past the end")
        b = buf[pos]
        pos += 1
        if shift == 28 and b & 0xF0:
            raise MalformedError("DELTA head varint above 32 bits")
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if shift and b == 0:
                raise MalformedError("overlong DELTA head varint")
            return value, pos
        shift += 7


# ---- TRAIN ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Train:
    TYPE: ClassVar[MsgType] = MsgType.TRAIN
    round: int
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float = 0.0
    prox_mu: float = 0.0
    clip: float = 0.0
    topk_count: int | None = None
    topk_fraction: float | None = None
    seed: int = 0
    flags: int = 0  # TRAIN_* bits

    def __post_init__(self) -> None:
        _round_f32_fields(self, ("learning_rate", "momentum", "prox_mu", "clip", "topk_fraction"))

    @property
    def topk_kind(self) -> int:
        return TopkKind.FRACTION if self.topk_fraction is not None else TopkKind.COUNT

    def encode(self) -> bytes:
        if (self.topk_count is None) == (self.topk_fraction is None):
            raise ArgumentError("TRAIN needs exactly one of topk_count and topk_fraction")
        if not (0 <= self.epochs <= 0xFF and 0 <= self.batch_size <= 0xFFFF):
            raise ArgumentError("epochs must fit in 8 bits and batch_size in 16 bits")
        lr, mom, mu, clip = (_f32(getattr(self, f), f)
                             for f in ("learning_rate", "momentum", "prox_mu", "clip"))
        if self.topk_fraction is not None:
            topk = struct.pack("<f", _f32(self.topk_fraction, "topk_fraction"))
        else:
            topk = struct.pack("<I", _u32(self.topk_count, "topk_count"))
        buf = (struct.pack("<IBBHffff", _u32(self.round, "round"), self.epochs, self.topk_kind,
                           self.batch_size, lr, mom, mu, clip)
               + topk + struct.pack("<II", _u32(self.seed, "seed"), _u32(self.flags, "flags")))
        Train.decode(buf)  # the same checks as the C encoder, on the float32 values
        return buf

    @classmethod
    def decode(cls, buf: bytes) -> Train:
        _fixed(buf, TRAIN_SIZE, "TRAIN")
        r, ep, kind, bs, lr, mom, mu, clip = struct.unpack_from("<IBBHffff", buf)
        (topk_u,) = struct.unpack_from("<I", buf, 24)
        (topk_f,) = struct.unpack_from("<f", buf, 24)
        seed, flags = struct.unpack_from("<II", buf, 28)
        if ep < 1:
            raise OutOfRangeError("TRAIN with 0 epochs")
        if kind > TopkKind.FRACTION:
            raise UnsupportedError(f"unknown top-k kind {kind}")
        if bs < 1:
            raise OutOfRangeError("TRAIN with batch size 0")
        _check_f32(lr, lr > 0.0, "learning_rate")
        _check_f32(mom, 0.0 <= mom < 1.0, "momentum")
        _check_f32(mu, mu >= 0.0, "prox_mu")
        _check_f32(clip, clip >= 0.0, "clip")
        if kind == TopkKind.COUNT:
            if topk_u < 1:
                raise OutOfRangeError("TRAIN with top-k count 0")
        else:
            _check_f32(topk_f, 0.0 < topk_f <= 1.0, "topk_fraction")
        if flags & ~TRAIN_FLAGS_KNOWN:
            raise UnsupportedError(f"unknown TRAIN flags 0x{flags:x}")
        bits = (flags & TRAIN_BITS_MASK) >> TRAIN_BITS_SHIFT
        if bits == 1 or bits > 8:
            raise OutOfRangeError(f"TRAIN value width {bits} bits")
        if (flags & TRAIN_CHECK_MASK) >> TRAIN_CHECK_SHIFT > TRAIN_CHECK_MAX:
            raise OutOfRangeError("TRAIN self-check drop above 100 hundredths")
        if kind == TopkKind.COUNT:
            return cls(r, ep, bs, lr, mom, mu, clip, topk_count=topk_u, seed=seed, flags=flags)
        return cls(r, ep, bs, lr, mom, mu, clip, topk_fraction=topk_f, seed=seed, flags=flags)


# ---- ACK / NACK -----------------------------------------------------------------------


def _decode_ack(buf: bytes, what: str) -> tuple[int, int]:
    _fixed(buf, ACK_SIZE, what)
    seq, code = struct.unpack("<IB", buf)
    if seq < 1:
        raise OutOfRangeError(f"{what} of seq 0")
    return seq, code


@dataclass(frozen=True)
class Ack:
    TYPE: ClassVar[MsgType] = MsgType.ACK
    acked_seq: int
    code: int = ACK_ACCEPTED

    def encode(self) -> bytes:
        buf = struct.pack("<IB", _u32(self.acked_seq, "acked_seq"), self.code & 0xFF)
        if self.code != buf[4]:
            raise ArgumentError("code must fit in 8 bits")
        Ack.decode(buf)
        return buf

    @classmethod
    def decode(cls, buf: bytes) -> Ack:
        seq, code = _decode_ack(buf, "ACK")
        if code > ACK_DUPLICATE:
            raise OutOfRangeError(f"ACK code {code}")
        return cls(seq, code)


@dataclass(frozen=True)
class Nack:
    TYPE: ClassVar[MsgType] = MsgType.NACK
    acked_seq: int
    code: int

    def encode(self) -> bytes:
        buf = struct.pack("<IB", _u32(self.acked_seq, "acked_seq"), self.code & 0xFF)
        if self.code != buf[4]:
            raise ArgumentError("code must fit in 8 bits")
        Nack.decode(buf)
        return buf

    @classmethod
    def decode(cls, buf: bytes) -> Nack:
        seq, code = _decode_ack(buf, "NACK")
        if code == 0:
            raise OutOfRangeError("NACK with code 0")
        return cls(seq, code)


# ---- STATUS / LOG / ERROR -------------------------------------------------------------


def _check_text(raw: bytes) -> str:
    if len(raw) > MAX_TEXT:
        raise OversizeError(f"text of {len(raw)} bytes (max {MAX_TEXT})")
    if any(not (0x20 <= c <= 0x7E or c in (0x09, 0x0A)) for c in raw):
        raise MalformedError("text has bytes outside printable ASCII, TAB and LF")
    return raw.decode("ascii")


def _text_bytes(text: str) -> bytes:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedError("text is not ASCII") from None
    _check_text(raw)
    return raw


@dataclass(frozen=True)
class Status:
    TYPE: ClassVar[MsgType] = MsgType.STATUS
    text: str

    def encode(self) -> bytes:
        return _text_bytes(self.text)

    @classmethod
    def decode(cls, buf: bytes) -> Status:
        return cls(_check_text(bytes(buf)))


@dataclass(frozen=True)
class Log:
    TYPE: ClassVar[MsgType] = MsgType.LOG
    text: str

    def encode(self) -> bytes:
        return _text_bytes(self.text)

    @classmethod
    def decode(cls, buf: bytes) -> Log:
        return cls(_check_text(bytes(buf)))


@dataclass(frozen=True)
class Error:
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int
    text: str

    def encode(self) -> bytes:
        if not 0 <= self.code <= 0xFFFF:
            raise ArgumentError("ERROR code must fit in 16 bits")
        return struct.pack("<H", self.code) + _text_bytes(self.text)

    @classmethod
    def decode(cls, buf: bytes) -> Error:
        if len(buf) < 2:
            raise TruncatedError("ERROR payload shorter than its code")
        (code,) = struct.unpack_from("<H", buf)
        return cls(code, _check_text(bytes(buf[2:])))


# ---- DISABLE --------------------------------------------------------------------------


@dataclass(frozen=True)
class Disable:
    TYPE: ClassVar[MsgType] = MsgType.DISABLE
    disabled: bool = True

    def encode(self) -> bytes:
        return bytes([1 if self.disabled else 0, 0, 0, 0])

    @classmethod
    def decode(cls, buf: bytes) -> Disable:
        _fixed(buf, DISABLE_SIZE, "DISABLE")
        if buf[0] > 1:
            raise OutOfRangeError(f"DISABLE with disabled = {buf[0]} (0 or 1)")
        if any(buf[1:]):
            raise MalformedError("DISABLE with reserved bytes set")
        return cls(buf[0] == 1)


# ---- SECAGG ---------------------------------------------------------------------------

SECAGG_KIND_MAX = 7  # BEGIN, ADVERTISE, COHORT, SHARES, MASKED, UNMASK, REVEAL


@dataclass(frozen=True)
class Secagg:
    """kind u8 + a secure-aggregation payload; this layer checks the kind only."""

    TYPE: ClassVar[MsgType] = MsgType.SECAGG
    kind: int
    body: bytes

    def encode(self) -> bytes:
        payload = bytes([self.kind & 0xFF]) + bytes(self.body)
        self.decode(payload)  # the encoder checks what the decoder checks
        return payload

    @classmethod
    def decode(cls, buf: bytes) -> Secagg:
        if len(buf) < 2:
            raise TruncatedError(f"SECAGG payload of {len(buf)} bytes, at least 2 expected")
        if not 1 <= buf[0] <= SECAGG_KIND_MAX:
            raise UnsupportedError(f"SECAGG kind {buf[0]} (1..{SECAGG_KIND_MAX})")
        return cls(buf[0], bytes(buf[1:]))


Message = Hello | Global | Train | Delta | Ack | Nack | Status | Log | Error | Disable | Secagg
CLASSES: dict[int, type] = {
    cls.TYPE: cls
    for cls in (Hello, Global, Train, Delta, Ack, Nack, Status, Log, Error, Disable, Secagg)
}


def decode_message(msg_type: int, payload: bytes) -> Message:
    """Decodes and validates a complete payload (flt_msg_check + the typed decoder)."""
    cls = CLASSES.get(msg_type)
    if cls is None:
        raise UnsupportedError(f"unknown message type {msg_type}")
    return cls.decode(bytes(payload))
