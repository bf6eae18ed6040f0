"""Oracle of the frames of the device<->host wire protocol, version 3 (tests only).

An independent Python implementation of what firmware/runtime/proto/frame.c does; byte layout
in docs/protocol.md:

    COBS( header(3..17) | payload | HMAC-SHA256(key, header | payload)[:8] ) 0x00
    header = (version << 6 | FROM_HOST << 5 | CHUNKED << 4 | type), LEB128 device_id, seq
             [, chunk_index, chunk_count when CHUNKED]

HMAC after RFC 2104 (hashlib/hmac), COBS after Cheshire & Baker (tests/oracles/cobs.py).
``decode_frame`` checks in the same order as ``flt_proto_frame_decode`` and raises the
``ProtocolError`` subclass whose ``status`` names the flt_status_t the C side returns for the
same bytes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass

from fltiny.errors import FltinyError
from oracles import cobs

VERSION = 3
HEADER_MIN = 3
HEADER_MAX = 17  # 1 + 5 + 5 + 3 + 3
TAG_SIZE = 8
KEY_SIZE = 32
OVERHEAD_MIN = HEADER_MIN + TAG_SIZE
OVERHEAD = HEADER_MAX + TAG_SIZE  # worst case before COBS
MAX_CHUNK = 256  # FLT_PROTO_MAX_CHUNK default
FLAG_FROM_HOST = 0x01
FLAGS_KNOWN = 0x01
_BIT_FROM_HOST, _BIT_CHUNKED = 0x20, 0x10

# flt_status_t values by name (firmware/runtime/core/flt_status.h); NACK codes use them.
STATUS_NAMES = (
    "FLT_OK",
    "FLT_ERR_ARG",
    "FLT_ERR_SHAPE",
    "FLT_ERR_RANGE",
    "FLT_ERR_TRUNCATED",
    "FLT_ERR_OVERSIZE",
    "FLT_ERR_FORMAT",
    "FLT_ERR_UNSUPPORTED",
    "FLT_ERR_NOMEM",
    "FLT_ERR_NONFINITE",
    "FLT_ERR_CHECKSUM",
    "FLT_ERR_STATE",
    "FLT_ERR_AUTH",
    "FLT_ERR_REPLAY",
    "FLT_ERR_DUPLICATE",
    "FLT_ERR_ORDER",
)
STATUS = {name: value for value, name in enumerate(STATUS_NAMES)}


def status_name(code: int) -> str:
    return STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else f"status {code}"


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
    SECAGG = 11


def is_control(msg_type: int) -> bool:
    return msg_type in (MsgType.ACK, MsgType.NACK)


# ---- errors ----------------------------------------------------------------------------


class ProtocolError(FltinyError):
    """Bytes or a peer that break the protocol. ``status`` names the matching C flt_status_t;
    ``reason`` says what exactly was wrong."""

    status = "FLT_ERR_FORMAT"

    def __init__(self, reason: str, status: str | None = None) -> None:
        if status is not None:
            self.status = status
        super().__init__(f"{reason} ({self.status}); check the link, the device key and that "
                         "both ends run protocol version 3")
        self.reason = reason


class ArgumentError(ProtocolError):
    status = "FLT_ERR_ARG"


class OutOfRangeError(ProtocolError):
    status = "FLT_ERR_RANGE"


class TruncatedError(ProtocolError):
    status = "FLT_ERR_TRUNCATED"


class OversizeError(ProtocolError):
    status = "FLT_ERR_OVERSIZE"


class MalformedError(ProtocolError):
    status = "FLT_ERR_FORMAT"


class UnsupportedError(ProtocolError):
    status = "FLT_ERR_UNSUPPORTED"


class MessageTooLargeError(ProtocolError):
    status = "FLT_ERR_NOMEM"


class NonFiniteError(ProtocolError):
    status = "FLT_ERR_NONFINITE"


class ChecksumError(ProtocolError):
    status = "FLT_ERR_CHECKSUM"


class StateError(ProtocolError):
    status = "FLT_ERR_STATE"


class AuthError(ProtocolError):
    status = "FLT_ERR_AUTH"


class ReplayError(ProtocolError):
    status = "FLT_ERR_REPLAY"


class DuplicateError(ProtocolError):
    status = "FLT_ERR_DUPLICATE"


class ChunkOrderError(ProtocolError):
    status = "FLT_ERR_ORDER"


class NackError(ProtocolError):
    """The peer rejected a frame we sent (``code``: its flt_status_t)."""

    def __init__(self, seq: int, code: int) -> None:
        self.seq = seq
        self.code = code
        super().__init__(f"peer rejected frame seq {seq}: {status_name(code)}", status_name(code))


class DeliveryError(ProtocolError):
    """A frame was not acknowledged after the configured retries."""

    status = "FLT_ERR_STATE"


ERRORS: dict[str, type[ProtocolError]] = {
    cls.status: cls
    for cls in (ArgumentError, OutOfRangeError, TruncatedError, OversizeError, MalformedError,
                UnsupportedError, MessageTooLargeError, NonFiniteError, ChecksumError,
                StateError, AuthError, ReplayError, DuplicateError, ChunkOrderError)
}


def error(status: str, reason: str) -> ProtocolError:
    """The ProtocolError subclass for a C status name."""
    return ERRORS.get(status, ProtocolError)(reason, status)


# ---- frames ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    type: int
    device_id: int
    seq: int
    chunk_index: int = 0
    chunk_count: int = 1
    payload_len: int = 0
    flags: int = 0
    version: int = VERSION

    def pack(self) -> bytes:
        first = self.version << 6 | self.type
        first |= _BIT_FROM_HOST if self.flags & FLAG_FROM_HOST else 0
        out = varint(self.device_id) + varint(self.seq)
        if self.chunk_count > 1:
            first |= _BIT_CHUNKED
            out += varint(self.chunk_index) + varint(self.chunk_count)
        return bytes([first]) + out


def varint(v: int) -> bytes:
    """LEB128 of a non-negative integer: 7 bits per byte, low group first."""
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of a minimal LEB128 uint32 at data[pos:]."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise TruncatedError("header ends inside a varint")
        byte = data[pos]
        pos += 1
        if shift == 28 and byte & 0xF0:  # a 5th byte holds the top 4 bits and ends it
            raise MalformedError("varint above 32 bits in the header")
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    if shift and byte == 0:
        raise MalformedError("overlong varint in the header")
    return value, pos


@dataclass(frozen=True)
class Frame:
    header: Header
    payload: bytes


def tag(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:TAG_SIZE]


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ArgumentError(f"device key must be {KEY_SIZE} bytes, got {len(key)}")


def encode_frame(header: Header, payload: bytes, key: bytes, *, max_chunk: int = MAX_CHUNK,
                 ) -> bytes:
    """One wire frame (COBS-encoded, with the trailing 0x00 delimiter)."""
    _check_key(key)
    h = header
    if h.payload_len != len(payload):
        raise ArgumentError(f"payload_len {h.payload_len} != {len(payload)} payload bytes")
    if h.version != VERSION or h.type not in MsgType.__members__.values():
        raise ArgumentError(f"bad version {h.version} or type {h.type}")
    if h.flags & ~FLAGS_KNOWN & 0xFF or not 0 <= h.flags <= 0xFF:
        raise ArgumentError(f"unknown flags {h.flags:#x}")
    if not (1 <= h.chunk_count <= 0xFFFF and 0 <= h.chunk_index < h.chunk_count):
        raise ArgumentError(f"bad chunk {h.chunk_index}/{h.chunk_count}")
    if len(payload) > max_chunk:
        raise ArgumentError(f"payload of {len(payload)} bytes exceeds a chunk ({max_chunk})")
    if not (0 <= h.device_id <= 0xFFFFFFFF and 0 <= h.seq <= 0xFFFFFFFF):
        raise ArgumentError("device id and seq must fit in 32 bits")
    body = h.pack() + bytes(payload)
    return cobs.encode(body + tag(key, body)) + b"\x00"


def decode_frame(frame: bytes, key: bytes, *, max_chunk: int = MAX_CHUNK) -> Frame:
    """Checks one COBS-decoded frame (without delimiter), like flt_proto_frame_decode."""
    n = len(frame)
    if n < OVERHEAD_MIN:
        raise TruncatedError(f"frame of {n} bytes is shorter than the {OVERHEAD_MIN}-byte minimum")
    if frame[0] >> 6 != VERSION:
        raise UnsupportedError(f"protocol version {frame[0] >> 6} (first byte {frame[0]:#04x})")
    body = n - TAG_SIZE
    if not hmac.compare_digest(tag(key, frame[:body]), frame[body:]):
        raise AuthError("HMAC tag mismatch (wrong key, forged or corrupted frame)")
    mtype = frame[0] & 0x0F
    if not 1 <= mtype <= max(MsgType):
        raise UnsupportedError(f"unknown message type {mtype}")
    head = frame[:body]
    dev, pos = read_varint(head, 1)
    seq, pos = read_varint(head, pos)
    idx, count = 0, 1
    if frame[0] & _BIT_CHUNKED:
        idx, pos = read_varint(head, pos)
        count, pos = read_varint(head, pos)
        if not (2 <= count <= 0xFFFF and idx < count):
            raise MalformedError(f"chunk index {idx} of {count}")
    plen = body - pos
    if plen > max_chunk:
        raise OversizeError(f"payload length {plen} exceeds the {max_chunk}-byte chunk limit")
    header = Header(type=mtype, device_id=dev, seq=seq, chunk_index=idx, chunk_count=count,
                    payload_len=plen, flags=FLAG_FROM_HOST if frame[0] & _BIT_FROM_HOST else 0)
    return Frame(header, bytes(frame[pos:body]))


def decode_wire(data: bytes, key: bytes, *, max_chunk: int = MAX_CHUNK) -> Frame:
    """One wire frame (COBS bytes, optionally with its trailing delimiter) -> Frame."""
    if data.endswith(b"\x00"):
        data = data[:-1]
    try:
        raw = cobs.decode(data)
    except cobs.CobsDecodeError as e:
        raise MalformedError(str(e)) from None
    return decode_frame(raw, key, max_chunk=max_chunk)


def chunk_count(length: int, max_chunk: int = MAX_CHUNK) -> int:
    return max(1, -(-length // max_chunk))


def wire_size(payload_len: int) -> int:
    """Worst-case bytes on the wire for a frame with this payload (FLT_PROTO_WIRE_SIZE)."""
    return cobs.max_encoded(OVERHEAD + payload_len) + 1


def frame_size(header: Header) -> int:
    """COBS-decoded bytes of a frame with this header (flt_proto_frame_size)."""
    return len(header.pack()) + header.payload_len + TAG_SIZE
