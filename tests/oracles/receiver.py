"""Oracle of the protocol receiver: an independent Python stream receiver that follows
docs/protocol.md "Reliability" (the C is firmware/runtime/proto/link.c). Tests feed it and the
C the same bytes and compare the outcomes."""

from __future__ import annotations

from dataclasses import dataclass

from oracles import cobs
from oracles import messages as m
from oracles.protocol import (
    FLAG_FROM_HOST,
    MAX_CHUNK,
    OVERHEAD,
    AuthError,
    ChunkOrderError,
    DuplicateError,
    Header,
    MalformedError,
    MessageTooLargeError,
    OversizeError,
    ProtocolError,
    ReplayError,
    decode_frame,
    is_control,
)
from oracles.protocol import STATUS as _STATUS


@dataclass
class RxEvent:
    """What one frame did (mirrors flt_proto_rx_event_t)."""

    kind: str  # "chunk" | "message" | "control" | "rejected"
    header: Header | None = None
    message: m.Message | None = None  # "message": the decoded message; "control": Ack/Nack
    payload: bytes = b""  # "message": the reassembled payload bytes
    error: ProtocolError | None = None  # "rejected": why
    reply: m.Ack | m.Nack | None = None  # what to send back (None: nothing)


def _cobs_decode_lenient(data: bytes) -> tuple[bytes, bool]:
    """Decodes like the C receiver does byte by byte: (bytes, complete). A block running past
    the end yields what is there and complete=False. (0x00 cannot occur: it splits frames.)"""
    out = bytearray()
    i, n = 0, len(data)
    code = 0
    while i < n:
        if code not in (0, 0xFF):
            out.append(0)
        code = data[i]
        run = code - 1
        out += data[i + 1 : i + 1 + run]
        if i + 1 + run > n:
            return bytes(out), False
        i += 1 + run
    return bytes(out), True


class Receiver:
    """Byte-stream receiver with reassembly and replay protection for one peer.

    ``on_host``: accept frames from the device (flag FROM_HOST clear); otherwise the reverse.
    ``max_message`` is the reassembly buffer (msg_cap in C); ``max_frame`` the COBS-decoded
    frame buffer (frame_cap, default a full chunk)."""

    def __init__(self, key: bytes, device_id: int, *, on_host: bool = True,
                 max_message: int = 1 << 20, max_chunk: int = MAX_CHUNK,
                 max_frame: int | None = None) -> None:
        self.key = bytes(key)
        self.device_id = device_id
        self.expect_flags = 0 if on_host else FLAG_FROM_HOST
        self.max_message = max_message
        self.max_chunk = max_chunk
        self.max_frame = OVERHEAD + max_chunk if max_frame is None else max_frame
        self.last_seq = 0
        self._pending = bytearray()
        self._overflow = False
        self._asm: tuple[int, int, int] | None = None  # (type, count, next index)
        self._msg = bytearray()

    def feed(self, data: bytes) -> list[RxEvent]:
        events: list[RxEvent] = []
        # stop buffering far beyond any frame that fits (the exact test is on the decoded size)
        limit = 2 * cobs.max_encoded(self.max_frame) + 16
        for part_i, part in enumerate(bytes(data).split(b"\x00")):
            if part_i > 0:  # a delimiter ended the pending frame
                if self._pending or self._overflow:
                    events.append(self._end_frame())
                self._pending.clear()
                self._overflow = False
            if not self._overflow:
                self._pending += part
                if len(self._pending) > limit:  # certainly too long: stop buffering
                    self._overflow = True
                    self._pending.clear()
        return events

    def _end_frame(self) -> RxEvent:
        ev = RxEvent("rejected")
        try:
            self._frame(bytes(self._pending), ev)
        except ProtocolError as e:
            ev.kind = "rejected"
            ev.error = e
        return ev

    def _nack(self, ev: RxEvent, err: ProtocolError) -> ProtocolError:
        ev.reply = m.Nack(ev.header.seq, _STATUS[err.status])
        return err

    def _frame(self, encoded: bytes, ev: RxEvent) -> None:
        if self._overflow:
            raise OversizeError(f"frame longer than the {self.max_frame}-byte frame buffer")
        raw, complete = _cobs_decode_lenient(encoded)
        if len(raw) > self.max_frame:
            raise OversizeError(f"frame longer than the {self.max_frame}-byte frame buffer")
        if not complete:
            raise MalformedError("COBS block runs past the end of the frame")
        fr = decode_frame(raw, self.key, max_chunk=self.max_chunk)
        h = ev.header = fr.header
        if h.device_id != self.device_id or h.flags != self.expect_flags:
            raise AuthError(f"frame for device {h.device_id:#x} flags {h.flags:#x}, expected "
                            f"{self.device_id:#x} flags {self.expect_flags:#x}")
        if is_control(h.type):
            if h.seq != 0 or h.chunk_count != 1:
                raise MalformedError("ACK/NACK with a sequence number or chunks")
            ev.message = m.decode_message(h.type, fr.payload)
            ev.kind = "control"
            return
        if h.seq <= self.last_seq or h.seq == 0:
            if h.seq == self.last_seq and h.seq != 0:
                ev.reply = m.Ack(h.seq, m.ACK_DUPLICATE)
                raise DuplicateError(f"duplicate frame seq {h.seq} (retransmission)")
            if h.seq == 0:  # an ACK/NACK names seq >= 1: no answer
                raise ReplayError("data frame with seq 0")
            raise self._nack(ev, ReplayError(f"seq {h.seq} <= last accepted {self.last_seq}"))
        if h.type == m.MsgType.TRAIN and h.flags & FLAG_FROM_HOST and h.seq != self.last_seq + 1:
            self._asm = None  # a host frame before the TRAIN was lost ("Answered messages")
            raise self._nack(ev, ChunkOrderError(
                f"TRAIN seq {h.seq} does not follow the last accepted {self.last_seq}"))
        if h.chunk_index == 0:
            self._asm = (h.type, h.chunk_count, 0)
            self._msg.clear()
        elif (self._asm is None or self._asm != (h.type, h.chunk_count, h.chunk_index)
              or h.seq != self.last_seq + 1):
            self._asm = None
            raise self._nack(ev, ChunkOrderError(
                f"chunk {h.chunk_index}/{h.chunk_count} seq {h.seq} out of order"))
        if len(fr.payload) > self.max_message - len(self._msg):
            self._asm = None
            raise self._nack(ev, MessageTooLargeError(
                f"message larger than the {self.max_message}-byte buffer"))
        self._msg += fr.payload
        if h.chunk_index + 1 == h.chunk_count:
            self._asm = None
            payload = bytes(self._msg)
            try:
                ev.message = m.decode_message(h.type, payload)
            except ProtocolError as e:
                raise self._nack(ev, e) from None
            ev.kind = "message"
            ev.payload = payload
        else:
            self._asm = (h.type, h.chunk_count, h.chunk_index + 1)
            ev.kind = "chunk"
        self.last_seq = h.seq
        if acked(h.type, h.chunk_count, h.flags):
            ev.reply = m.Ack(h.seq, m.ACK_ACCEPTED)


ANSWERED_CHUNKS = 4  # FLT_PROTO_ANSWERED_CHUNKS


def acked(msg_type: int, chunk_count: int, flags: int) -> bool:
    """Whether an accepted data frame gets an ACK (docs/protocol.md "Answered messages"): not a
    host TRAIN (its answer confirms it), nor a host GLOBAL of at most ANSWERED_CHUNKS frames
    (the answer to the TRAIN after it confirms it)."""
    if not flags & FLAG_FROM_HOST:
        return True
    if msg_type == m.MsgType.TRAIN:
        return False
    return not (msg_type == m.MsgType.GLOBAL and chunk_count <= ANSWERED_CHUNKS)
