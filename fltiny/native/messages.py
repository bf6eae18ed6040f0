"""The protocol messages as Python values; their bytes come from the C codecs.

Each dataclass is the Python face of one C struct of firmware/runtime/proto/messages.h:
``encode()`` fills the struct and calls ``flt_msg_<type>_encode``, ``decode(buf)`` calls
``flt_msg_<type>_decode`` and reads the struct back. Validation is the C's (same checks, same
status on the device and the host); a failure raises ``ProtocolError`` with the C status.
Float fields hold their float32 value from construction on, so a message equals its decoded
copy.
"""

from __future__ import annotations

import ctypes as C
import enum
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from fltiny.native import lib as L
from fltiny.native.errors import ProtocolError, check


class MsgType(enum.IntEnum):
    HELLO = 1
    GLOBAL = 2
    TRAIN = 3
    DELTA = 4
    ACK = 5
    NACK = 6
    STATUS = 7
    LOG = 8
    ERROR = 9
    DISABLE = 10
    SECAGG = 11  # one secure-aggregation message, its kind in the first payload byte


class SecaggKind(enum.IntEnum):
    """The kind byte of a SECAGG message (messages.h FLT_SECAGG_KIND_*); the body after it is
    the secagg/msg.h payload of that name (fltiny.native.secagg codes it)."""

    BEGIN = 1  # host -> device
    ADVERTISE = 2  # device -> host
    COHORT = 3  # host -> device
    SHARES = 4  # both
    MASKED = 5  # device -> host
    UNMASK = 6  # host -> device
    REVEAL = 7  # device -> host


class GlobalKind(enum.IntEnum):
    FULL = 0
    DELTA = 1


def is_control(msg_type: int) -> bool:
    return msg_type in (MsgType.ACK, MsgType.NACK)


# Module constants read from the compiled C (lazily, so importing this module builds nothing).
_C_CONSTANTS = {
    "CAP_TRAIN_HEAD": "FLT_CAP_TRAIN_HEAD", "CAP_DELTA_BLOCK": "FLT_CAP_DELTA_BLOCK",
    "CAP_GLOBAL_DELTA": "FLT_CAP_GLOBAL_DELTA", "CAP_SECAGG": "FLT_CAP_SECAGG",
    "TRAIN_SECAGG": "FLT_TRAIN_SECAGG", "ACK_DUPLICATE": "FLT_ACK_DUPLICATE",
    "DELTA_HEADER_MIN": "FLT_MSG_DELTA_HEADER_MIN", "DELTA_HEADER_MAX": "FLT_MSG_DELTA_HEADER_MAX",
    "ACK_SIZE": "FLT_MSG_ACK_SIZE",
    "HELLO_SIZE": "FLT_MSG_HELLO_SIZE", "TRAIN_SIZE": "FLT_MSG_TRAIN_SIZE",
    "GLOBAL_HEADER_SIZE": "FLT_MSG_GLOBAL_HEADER_SIZE", "MAX_TEXT": "FLT_PROTO_MAX_TEXT",
    "DISABLE_SIZE": "FLT_MSG_DISABLE_SIZE",
    "TRAIN_DRIFT": "FLT_TRAIN_DRIFT", "TRAIN_PERSONAL": "FLT_TRAIN_PERSONAL",
    "TRAIN_NO_FEEDBACK": "FLT_TRAIN_NO_FEEDBACK", "TRAIN_RESET": "FLT_TRAIN_RESET",
    "TRAIN_SELECT": "FLT_TRAIN_SELECT", "TRAIN_LOCAL_DP": "FLT_TRAIN_LOCAL_DP",
    "TRAIN_BITS_SHIFT": "FLT_TRAIN_BITS_SHIFT",
    "TRAIN_FLAGS_KNOWN": "FLT_TRAIN_FLAGS_KNOWN", "TRAIN_CHECK_SHIFT": "FLT_TRAIN_CHECK_SHIFT",
    "TRAIN_CHECK_MAX": "FLT_TRAIN_CHECK_MAX",
}
ACK_ACCEPTED = 0  # FLT_ACK_ACCEPTED: "no code" (the default of Ack)


def __getattr__(name: str) -> int:
    if name in _C_CONSTANTS:
        return L.const(_C_CONSTANTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_F32 = struct.Struct("<f")


def _f32(v: float | None) -> float | None:
    """float32 value of v (what the wire carries, rounded to nearest); a finite value beyond
    float32's range stays as it is (encode rejects it)."""
    if v is None:
        return None
    try:
        return _F32.unpack(_F32.pack(v))[0]
    except OverflowError:
        return v


def _round_fields(obj: object, names: tuple[str, ...]) -> None:
    for n in names:
        object.__setattr__(obj, n, _f32(getattr(obj, n)))


def _u32(v: int, name: str) -> int:
    if not 0 <= v <= 0xFFFFFFFF:
        raise ProtocolError(f"{name} = {v} does not fit in 32 bits", "FLT_ERR_ARG")
    return v


def _encode(fn: str, struct: C.Structure, cap: int, what: str, *pre: object) -> bytes:
    out = C.create_string_buffer(max(cap, 1))
    n = C.c_size_t(0)
    check(getattr(L.rt(), fn)(*pre, C.byref(struct), out, cap, C.byref(n)), f"{what} encoding")
    return out.raw[: n.value]


def _decode(fn: str, buf: bytes, struct: C.Structure, what: str, *pre: object) -> C.Array:
    data = C.create_string_buffer(bytes(buf), max(len(buf), 1))
    check(getattr(L.rt(), fn)(*pre, data, len(buf), C.byref(struct)), f"{what} decoding")
    return data  # the struct's pointers point into it


def _decode_span(fn: str, buf: bytes, struct: C.Structure, what: str, field: str,
                 *pre: object) -> bytes:
    """``_decode`` for a message that carries bytes: a copy of the span that ``struct.<field>``
    and ``struct.<field>_len`` point at in the decoded buffer (freed when this returns)."""
    keep = _decode(fn, buf, struct, what, *pre)
    n = getattr(struct, field + "_len")
    span = C.string_at(getattr(struct, field), n) if n else b""
    del keep  # the pointer pointed into it
    return span


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
    # the last sequence number the device's receiver accepted from a host (0: none since its
    # boot); a HELLO with host_seq > 0 re-announces a running board (docs/protocol.md)
    host_seq: int = 0

    def encode(self) -> bytes:
        try:
            raw = self.name.encode("ascii")
        except UnicodeEncodeError:
            raise ProtocolError("board name is not ASCII", "FLT_ERR_FORMAT") from None
        if len(raw) > 16 or len(self.model_hash) != 8:
            raise ProtocolError("board name over 16 bytes or model hash not 8", "FLT_ERR_ARG")
        s = L.HelloMsg(raw, _u32(self.capabilities, "capabilities"),
                       _u32(self.firmware_version, "firmware_version"),
                       (C.c_uint8 * 8)(*self.model_hash), _u32(self.model_version, "version"),
                       _u32(self.head_params, "head_params"), _u32(self.free_ram, "free_ram"),
                       _u32(self.host_seq, "host_seq"))
        return _encode("flt_msg_hello_encode", s, L.const("FLT_MSG_HELLO_SIZE"), "HELLO")

    @classmethod
    def decode(cls, buf: bytes) -> Hello:
        s = L.HelloMsg()
        _decode("flt_msg_hello_decode", buf, s, "HELLO")
        return cls(s.name.decode("ascii"), s.capabilities, s.firmware_version,
                   bytes(s.model_hash), s.model_version, s.head_params, s.free_ram, s.host_seq)


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
        """The float32 parameters of a FULL global (the body is the raw little-endian array)."""
        return np.frombuffer(self.body, dtype="<f4").astype(np.float32)

    def encode(self) -> bytes:
        body = C.create_string_buffer(self.body, max(len(self.body), 1))
        s = L.GlobalMsg(_u32(self.model_version, "model_version"),
                        _u32(self.base_version, "base_version"), self.kind & 0xFF,
                        C.cast(body, C.c_void_p), len(self.body))
        if self.kind != s.kind:
            raise ProtocolError(f"GLOBAL kind {self.kind}", "FLT_ERR_UNSUPPORTED")
        cap = L.const("FLT_MSG_GLOBAL_HEADER_SIZE") + len(self.body)
        return _encode("flt_msg_global_encode", s, cap, "GLOBAL")

    @classmethod
    def decode(cls, buf: bytes) -> Global:
        s = L.GlobalMsg()
        body = _decode_span("flt_msg_global_decode", buf, s, "GLOBAL", "body")
        return cls(s.model_version, s.base_version, GlobalKind(s.kind), body)


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
        _round_fields(self, ("loss", "personal_metric"))

    def encode(self) -> bytes:
        body = C.create_string_buffer(self.body, max(len(self.body), 1))
        s = L.DeltaMsg(_u32(self.round, "round"), _u32(self.base_version, "base_version"),
                       _u32(self.examples, "examples"), self.loss,
                       _u32(self.personal_n, "personal_n"), self.personal_metric,
                       C.cast(body, C.c_void_p), len(self.body))
        cap = L.const("FLT_MSG_DELTA_HEADER_MAX") + len(self.body)
        return _encode("flt_msg_delta_encode", s, cap, "DELTA")

    @classmethod
    def decode(cls, buf: bytes) -> Delta:
        s = L.DeltaMsg()
        body = _decode_span("flt_msg_delta_decode", buf, s, "DELTA", "body")
        return cls(s.round, s.base_version, s.examples, s.loss, body, s.personal_n,
                   s.personal_metric)


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
    flags: int = 0  # TRAIN_* bits (FLT_TRAIN_*)
    ldp_clip: float = 0.0  # TRAIN_LOCAL_DP: the update's L2 bound (else 0)
    ldp_noise: float = 0.0  # TRAIN_LOCAL_DP: the noise multiplier (else 0)

    def __post_init__(self) -> None:
        _round_fields(self, ("learning_rate", "momentum", "prox_mu", "clip", "topk_fraction",
                             "ldp_clip", "ldp_noise"))

    @property
    def topk_kind(self) -> int:
        return 1 if self.topk_fraction is not None else 0  # FLT_TOPK_FRACTION / _COUNT

    def encode(self) -> bytes:
        if (self.topk_count is None) == (self.topk_fraction is None):
            raise ProtocolError("TRAIN needs exactly one of topk_count and topk_fraction",
                                "FLT_ERR_ARG")
        if not (0 <= self.epochs <= 0xFF and 0 <= self.batch_size <= 0xFFFF):
            raise ProtocolError("epochs must fit in 8 bits and batch_size in 16 bits",
                                "FLT_ERR_ARG")
        s = L.TrainMsg(_u32(self.round, "round"), self.epochs, self.topk_kind, self.batch_size,
                       self.learning_rate, self.momentum, self.prox_mu, self.clip,
                       _u32(self.topk_count or 0, "topk_count"), self.topk_fraction or 0.0,
                       _u32(self.seed, "seed"), _u32(self.flags, "flags"), self.ldp_clip,
                       self.ldp_noise)
        return _encode("flt_msg_train_encode", s, L.const("FLT_MSG_TRAIN_MAX_SIZE"), "TRAIN")

    @classmethod
    def decode(cls, buf: bytes) -> Train:
        s = L.TrainMsg()
        _decode("flt_msg_train_decode", buf, s, "TRAIN")
        topk = (dict(topk_fraction=s.topk_fraction) if s.topk_kind == 1
                else dict(topk_count=s.topk_count))
        return cls(s.round, s.epochs, s.batch_size, s.learning_rate, s.momentum, s.prox_mu,
                   s.clip, seed=s.seed, flags=s.flags, ldp_clip=s.ldp_clip,
                   ldp_noise=s.ldp_noise, **topk)


@dataclass(frozen=True)
class _AckBase:
    TYPE: ClassVar[MsgType]
    acked_seq: int
    code: int = ACK_ACCEPTED  # ACK: 0 accepted, 1 duplicate; NACK: the rejection's status

    def encode(self) -> bytes:
        if not 0 <= self.code <= 0xFF:
            raise ProtocolError("code must fit in 8 bits", "FLT_ERR_ARG")
        s = L.Ack(_u32(self.acked_seq, "acked_seq"), self.code)
        return _encode("flt_msg_ack_encode", s, L.const("FLT_MSG_ACK_SIZE"), self.TYPE.name,
                       int(self.TYPE))

    @classmethod
    def decode(cls, buf: bytes) -> Self:
        s = L.Ack()
        _decode("flt_msg_ack_decode", buf, s, cls.TYPE.name, int(cls.TYPE))
        return cls(s.acked_seq, s.code)


@dataclass(frozen=True)
class Ack(_AckBase):
    TYPE: ClassVar[MsgType] = MsgType.ACK


@dataclass(frozen=True)
class Nack(_AckBase):
    TYPE: ClassVar[MsgType] = MsgType.NACK


def _text_encode(t: MsgType, code: int, text: str) -> bytes:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ProtocolError("text is not ASCII", "FLT_ERR_FORMAT") from None
    if not 0 <= code <= 0xFFFF:
        raise ProtocolError("ERROR code must fit in 16 bits", "FLT_ERR_ARG")
    data = C.create_string_buffer(raw, max(len(raw), 1))
    s = L.TextMsg(code, C.cast(data, C.c_void_p), len(raw))
    return _encode("flt_msg_text_encode", s, 2 + len(raw), t.name, int(t))


def _text_decode(t: MsgType, buf: bytes) -> tuple[int, str]:
    s = L.TextMsg()
    text = _decode_span("flt_msg_text_decode", buf, s, t.name, "text", int(t)).decode("ascii")
    return s.code, text


@dataclass(frozen=True)
class _TextBase:
    TYPE: ClassVar[MsgType]
    text: str

    def encode(self) -> bytes:
        return _text_encode(self.TYPE, 0, self.text)

    @classmethod
    def decode(cls, buf: bytes) -> Self:
        return cls(_text_decode(cls.TYPE, buf)[1])


@dataclass(frozen=True)
class Status(_TextBase):
    TYPE: ClassVar[MsgType] = MsgType.STATUS


@dataclass(frozen=True)
class Log(_TextBase):
    TYPE: ClassVar[MsgType] = MsgType.LOG


@dataclass(frozen=True)
class Error:
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int
    text: str

    def encode(self) -> bytes:
        return _text_encode(self.TYPE, self.code, self.text)

    @classmethod
    def decode(cls, buf: bytes) -> Error:
        return cls(*_text_decode(cls.TYPE, buf))


@dataclass(frozen=True)
class Disable:
    """DISABLE (``disabled`` True) or ENABLE (False) on-device training: a disabled device
    answers TRAIN with an ERROR and serves its factory model until enabled again."""

    TYPE: ClassVar[MsgType] = MsgType.DISABLE
    disabled: bool = True

    def encode(self) -> bytes:
        s = L.DisableMsg(1 if self.disabled else 0)
        return _encode("flt_msg_disable_encode", s, L.const("FLT_MSG_DISABLE_SIZE"), "DISABLE")

    @classmethod
    def decode(cls, buf: bytes) -> Disable:
        s = L.DisableMsg()
        _decode("flt_msg_disable_decode", buf, s, "DISABLE")
        return cls(bool(s.disabled))


@dataclass(frozen=True)
class Secagg:
    """SECAGG: one secure-aggregation message, ``kind`` and its secagg/msg.h ``body`` (docs/
    protocol.md "Secure aggregation on the device link"). The frame codec checks the kind;
    the body is validated by the secagg decoder of its kind where it is read."""

    TYPE: ClassVar[MsgType] = MsgType.SECAGG
    kind: SecaggKind
    body: bytes

    def encode(self) -> bytes:
        payload = bytes([int(self.kind) & 0xFF]) + bytes(self.body)
        check(L.rt().flt_msg_secagg_check(payload, len(payload)), "SECAGG encoding")
        return payload

    @classmethod
    def decode(cls, buf: bytes) -> Secagg:
        data = bytes(buf)
        check(L.rt().flt_msg_secagg_check(data, len(data)), "SECAGG decoding")
        return cls(SecaggKind(data[0]), data[1:])


Message = Hello | Global | Train | Delta | Ack | Nack | Status | Log | Error | Disable | Secagg
CLASSES: dict[int, type] = {
    cls.TYPE: cls
    for cls in (Hello, Global, Train, Delta, Ack, Nack, Status, Log, Error, Disable, Secagg)
}


def decode_message(msg_type: int, payload: bytes) -> Message:
    """Decodes and validates a complete payload (the C typed decoder of its type)."""
    cls = CLASSES.get(msg_type)
    if cls is None:
        raise ProtocolError(f"unknown message type {msg_type}", "FLT_ERR_UNSUPPORTED")
    return cls.decode(bytes(payload))
