"""Reliability layer of the protocol, host side: a stream receiver that mirrors the device's
flt_proto_rx_t (firmware/runtime/proto/link.c) and a transport-independent session with
stop-and-wait retransmission. Semantics: docs/protocol.md, "Reliability".

The session does no I/O of its own: it gets ``send(bytes)`` and ``receive() -> bytes``
callables (a serial port, a TCP socket, a QEMU serial socket or a test double) and a
``clock() -> seconds`` (injectable, so the retransmission logic is tested without sleeping).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fltiny.bridge import cobs
from fltiny.bridge import messages as m
from fltiny.bridge.protocol import (
    FLAG_FROM_HOST,
    MAX_CHUNK,
    OVERHEAD,
    AuthError,
    ChunkOrderError,
    DeliveryError,
    DuplicateError,
    Header,
    MalformedError,
    MessageTooLargeError,
    NackError,
    OversizeError,
    ProtocolError,
    ReplayError,
    chunk_count,
    decode_frame,
    encode_frame,
    is_control,
)
from fltiny.bridge.protocol import STATUS as _STATUS


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
            raise self._nack(ev, ReplayError(f"seq {h.seq} <= last accepted {self.last_seq}"))
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
        ev.reply = m.Ack(h.seq, m.ACK_ACCEPTED)


@dataclass
class _Outgoing:
    message: m.Message
    frames: list[bytes]
    first_seq: int
    index: int = 0
    tries: int = 0
    sent_at: float = 0.0
    done: bool = False

    @property
    def seq(self) -> int:
        return self.first_seq + self.index


@dataclass
class SessionStats:
    frames_sent: int = 0
    retransmissions: int = 0
    rejected: list[str] = field(default_factory=list)  # status names of rejected frames


class Session:
    """One protocol session with one device (or, with on_host=False, with the host).

    Outgoing messages are queued by ``submit`` and sent one chunk at a time; each chunk is
    retransmitted after ``timeout`` seconds without its ACK, at most ``retries`` times, then
    ``poll`` raises DeliveryError (and drops that message). A NACK raises NackError. Incoming
    messages are delivered exactly once, in order, to ``inbox`` (``recv`` pops them).
    ``poll`` is the single step: read what ``receive`` returns, answer, retransmit."""

    def __init__(self, *, key: bytes, device_id: int, send: Callable[[bytes], object],
                 receive: Callable[[], bytes], on_host: bool = True,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 0.25,
                 retries: int = 8, max_chunk: int = MAX_CHUNK, max_message: int = 1 << 20,
                 first_seq: int = 1,
                 on_rejected: Callable[[RxEvent], None] | None = None) -> None:
        if len(key) != 32:
            raise ValueError("the device key must be 32 bytes")
        self.key = bytes(key)
        self.device_id = device_id
        self.flags = FLAG_FROM_HOST if on_host else 0
        self._send = send
        self._receive = receive
        self.clock = clock
        self.timeout = timeout
        self.retries = retries
        self.max_chunk = max_chunk
        self.next_seq = first_seq
        self.receiver = Receiver(key, device_id, on_host=on_host, max_message=max_message,
                                 max_chunk=max_chunk)
        self.outbox: deque[_Outgoing] = deque()
        self.inbox: deque[m.Message] = deque()
        self.stats = SessionStats()
        self.on_rejected = on_rejected  # sees every rejected frame (e.g. a rebooted peer's seq 1)

    # ---- sending -----------------------------------------------------------------------

    def _frames(self, msg: m.Message, first_seq: int) -> list[bytes]:
        payload = msg.encode()
        count = chunk_count(len(payload), self.max_chunk)
        if count > 0xFFFF:
            raise MessageTooLargeError(f"message of {len(payload)} bytes needs {count} chunks")
        out = []
        for i in range(count):
            part = payload[i * self.max_chunk : (i + 1) * self.max_chunk]
            h = Header(type=msg.TYPE, device_id=self.device_id, seq=first_seq + i,
                       chunk_index=i, chunk_count=count, payload_len=len(part), flags=self.flags)
            out.append(encode_frame(h, part, self.key, max_chunk=self.max_chunk))
        return out

    def submit(self, msg: m.Message) -> None:
        """Queues a message (encoded and chunked now, so a bad message fails here)."""
        if is_control(msg.TYPE):
            raise ValueError("ACK/NACK are sent by the session itself")
        frames = self._frames(msg, self.next_seq)
        if self.next_seq + len(frames) > 0xFFFFFFFF:
            raise DeliveryError("sequence numbers exhausted; re-provision the device key")
        self.outbox.append(_Outgoing(msg, frames, self.next_seq))
        self.next_seq += len(frames)

    def _transmit(self, out: _Outgoing) -> None:
        if out.tries > 0:
            self.stats.retransmissions += 1
        out.tries += 1
        out.sent_at = self.clock()
        self.stats.frames_sent += 1
        self._send(out.frames[out.index])

    def _on_control(self, msg: m.Ack | m.Nack) -> None:
        if not self.outbox or self.outbox[0].tries == 0:
            return
        cur = self.outbox[0]
        if msg.acked_seq != cur.seq:
            return  # stale (an ACK of an earlier retransmission) or replayed: ignore
        if isinstance(msg, m.Nack):
            self.outbox.popleft()
            raise NackError(msg.acked_seq, msg.code)
        cur.index += 1
        cur.tries = 0
        if cur.index == len(cur.frames):
            self.outbox.popleft()

    # ---- the step ----------------------------------------------------------------------

    def poll(self) -> None:
        """Reads available bytes, answers and delivers, (re)transmits. Raises NackError or
        DeliveryError for the message at the head of the outbox (it is dropped)."""
        data = self._receive()
        failure: ProtocolError | None = None
        for ev in self.receiver.feed(data) if data else ():
            if ev.reply is not None:
                h = Header(type=ev.reply.TYPE, device_id=self.device_id, seq=0,
                           payload_len=m.ACK_SIZE, flags=self.flags)
                self._send(encode_frame(h, ev.reply.encode(), self.key))
            if ev.kind == "message":
                self.inbox.append(ev.message)
            elif ev.kind == "control":
                try:
                    self._on_control(ev.message)
                except NackError as e:
                    failure = failure or e
            elif ev.kind == "rejected":
                self.stats.rejected.append(ev.error.status)
                if self.on_rejected is not None:
                    self.on_rejected(ev)
        if failure is not None:
            raise failure
        if not self.outbox:
            return
        cur = self.outbox[0]
        if cur.tries == 0:
            self._transmit(cur)
        elif self.clock() - cur.sent_at >= self.timeout:
            if cur.tries > self.retries:
                self.outbox.popleft()
                raise DeliveryError(
                    f"{type(cur.message).__name__} chunk {cur.index + 1}/{len(cur.frames)} "
                    f"(seq {cur.seq}) not acknowledged after {cur.tries} tries of "
                    f"{self.timeout} s; is the device running and on this port?")
            self._transmit(cur)

    @property
    def idle(self) -> bool:
        return not self.outbox

    def send(self, msg: m.Message) -> None:
        """Sends one message and waits (polling) until it is acknowledged."""
        self.submit(msg)
        target = self.outbox[-1]
        while target in self.outbox:
            self.poll()

    def recv(self, timeout: float) -> m.Message:
        """Polls until a message arrives; DeliveryError after ``timeout`` seconds."""
        end = self.clock() + timeout
        while not self.inbox:
            if self.clock() >= end:
                raise DeliveryError(f"no message within {timeout} s")
            self.poll()
        return self.inbox.popleft()
