"""Frames, the stream receiver and the outbox of the protocol: firmware/runtime/proto bound.

- ``encode_frame`` / ``decode_frame`` / ``decode_wire``: ``flt_proto_frame_encode`` /
  ``_decode`` and ``flt_cobs_decode`` (COBS, varint header, truncated HMAC tag:
  docs/protocol.md); ``frame_size`` / ``wire_size`` the bytes a frame takes.
- ``Receiver``: one ``flt_proto_rx_t`` (reassembly, replay protection, what to answer) fed
  whole reads through ``flt_proto_rx_feed_bytes``; each frame's outcome is an ``RxEvent``.
- ``Sender``: one ``flt_proto_tx_t`` (sequence numbers, chunk size, ACK/NACK replies) and a
  one-slot ``flt_outbox_t`` (stop-and-wait retransmission, firmware/runtime/proto/outbox.h),
  the same state machine the device loop runs.
The buffers every C object points to are owned by the Python object that holds it.
"""

from __future__ import annotations

import ctypes as C
from dataclasses import dataclass, replace

from fltiny.native import lib as L
from fltiny.native import messages as m
from fltiny.native.errors import ProtocolError, check
from fltiny.native.status import status_name

FLAG_FROM_HOST = 0x01  # FLT_PROTO_FLAG_FROM_HOST (asserted against the C in the tests)
def max_chunk() -> int:
    return L.const("FLT_PROTO_MAX_CHUNK")


def chunk_count(length: int, chunk: int | None = None) -> int:
    """Frames a message of ``length`` bytes needs (what flt_proto_tx_begin reserves)."""
    c = chunk or max_chunk()
    return max(1, -(-length // c))


def wire_size(payload_len: int, header: Header | None = None) -> int:
    """Bytes on the wire of a frame with this payload at most (COBS worst case and the
    delimiter): for ``header`` its exact COBS-decoded size (flt_proto_frame_size), else the
    largest header's (FLT_PROTO_WIRE_SIZE)."""
    if header is None:
        n = L.const("FLT_PROTO_OVERHEAD") + payload_len
    else:
        n = frame_size(replace(header, payload_len=payload_len))
    return n + n // 254 + 2


def frame_size(header: Header) -> int:
    """COBS-decoded bytes of a frame with this header: header + payload + tag."""
    n = int(L.rt().flt_proto_frame_size(C.byref(header.c())))
    if n == 0:
        raise ProtocolError(f"invalid frame header {header}", "FLT_ERR_ARG")
    return n


@dataclass(frozen=True)
class Header:
    type: int
    device_id: int
    seq: int
    chunk_index: int = 0
    chunk_count: int = 1
    payload_len: int = 0
    flags: int = 0
    version: int = 3  # FLT_PROTO_VERSION (asserted against the C in the tests)

    def c(self) -> L.Header:
        fields = (self.version, self.type, self.flags, self.device_id, self.seq,
                  self.chunk_index, self.chunk_count, self.payload_len)
        h = L.Header(*fields)
        if (h.version, h.type, h.flags, h.device_id, h.seq, h.chunk_index, h.chunk_count,
                h.payload_len) != fields:
            raise ProtocolError(f"header field out of range: {self}", "FLT_ERR_ARG")
        return h

    @classmethod
    def of(cls, h: L.Header) -> Header:
        return cls(h.type, h.device_id, h.seq, h.chunk_index, h.chunk_count, h.payload_len,
                   h.flags, h.version)


@dataclass(frozen=True)
class Frame:
    header: Header
    payload: bytes


def _key(key: bytes) -> C.Array:
    if len(key) != L.const("FLT_PROTO_KEY_SIZE"):
        raise ProtocolError(f"device key must be 32 bytes, got {len(key)}", "FLT_ERR_ARG")
    return C.create_string_buffer(bytes(key), len(key))


def encode_frame(header: Header, payload: bytes, key: bytes) -> bytes:
    """One wire frame (COBS-encoded, with the trailing 0x00 delimiter)."""
    if header.payload_len != len(payload):
        raise ProtocolError(f"payload_len {header.payload_len} != {len(payload)} bytes",
                            "FLT_ERR_ARG")
    cap = wire_size(len(payload))
    out = C.create_string_buffer(cap)
    n = C.c_size_t(0)
    data = C.create_string_buffer(bytes(payload), max(len(payload), 1))
    check(L.rt().flt_proto_frame_encode(C.byref(header.c()), data, _key(key), out, cap,
                                        C.byref(n)), "frame encoding")
    return out.raw[: n.value]


def decode_frame(frame: bytes, key: bytes) -> Frame:
    """Checks one COBS-decoded frame (delimiter removed) like the device does."""
    data = C.create_string_buffer(bytes(frame), max(len(frame), 1))
    h = L.Header()
    p = C.c_void_p()
    check(L.rt().flt_proto_frame_decode(data, len(frame), _key(key), C.byref(h), C.byref(p)),
          "frame decoding")
    return Frame(Header.of(h), C.string_at(p.value, h.payload_len) if h.payload_len else b"")


def decode_wire(data: bytes, key: bytes) -> Frame:
    """One wire frame (COBS bytes, optionally with its trailing delimiter) -> Frame."""
    data = data[:-1] if data.endswith(b"\x00") else data
    raw = C.create_string_buffer(max(len(data), 1))
    n = C.c_size_t(0)
    check(L.rt().flt_cobs_decode(bytes(data), len(data), raw, len(raw), C.byref(n)),
          "COBS decoding")
    return decode_frame(raw.raw[: n.value], key)


# ---- receiver ----------------------------------------------------------------------------

_KINDS = {1: "chunk", 2: "message", 3: "control", 4: "rejected"}


@dataclass
class RxEvent:
    """What one frame did (flt_proto_rx_event_t, with the message decoded)."""

    kind: str  # "chunk" | "message" | "control" | "rejected"
    header: Header | None = None  # None for frames rejected before their header was trusted
    message: m.Message | None = None  # "message": the decoded message; "control": Ack/Nack
    payload: bytes = b""  # "message": the reassembled payload bytes
    error: ProtocolError | None = None  # "rejected": why
    reply: m.Ack | m.Nack | None = None  # what to answer (None: nothing)
    c: L.RxEvent | None = None  # the C event (for Sender.reply / Sender.on_control)


class Receiver:
    """Byte-stream receiver for one peer (flt_proto_rx_t). ``on_host``: accept frames from the
    device; otherwise from the host. ``max_message`` is its reassembly buffer, ``max_frame``
    its COBS-decoded frame buffer (default: a full chunk)."""

    def __init__(self, key: bytes, device_id: int, *, on_host: bool = True,
                 max_message: int = 1 << 20, max_frame: int | None = None) -> None:
        self._key = _key(key)
        self._frame = C.create_string_buffer(max_frame or L.const("FLT_PROTO_MAX_FRAME"))
        self._msg = C.create_string_buffer(max(max_message, 1))
        self.rx = L.Rx()
        check(L.rt().flt_proto_rx_init(C.byref(self.rx), self._key, device_id, int(on_host),
                                       self._frame, len(self._frame), self._msg, max_message),
              "receiver init")

    @property
    def last_seq(self) -> int:
        return int(self.rx.last_seq)

    def resume_after(self, last_seq: int) -> None:
        """A receiver of a host that restarted: the peer's last accepted seq, as the previous
        host process had it at its checkpoint (``flt_proto_rx_t.last_seq``, link.h), so frames
        the peer sent before it stay refused as replays. Only before the first byte is fed."""
        if not 0 <= last_seq <= 0xFFFFFFFF:
            raise ProtocolError(f"sequence number {last_seq} out of range", "FLT_ERR_ARG")
        check(L.rt().flt_proto_rx_resume_after(C.byref(self.rx), last_seq), "receiver resume")

    def feed(self, data: bytes) -> list[RxEvent]:
        events: list[RxEvent] = []
        buf = C.create_string_buffer(bytes(data), max(len(data), 1))
        base, left = C.addressof(buf), len(data)
        used = C.c_size_t(0)
        lib = L.rt()
        while left:
            ev = L.RxEvent()
            s = lib.flt_proto_rx_feed_bytes(C.byref(self.rx), base, left, C.byref(used),
                                            C.byref(ev))
            base, left = base + used.value, left - used.value
            if ev.event:
                events.append(self._event(s, ev))
        return events

    def _event(self, status: int, ev: L.RxEvent) -> RxEvent:
        out = RxEvent(_KINDS[ev.event], c=ev)
        # the header of a frame that failed its CRC/tag checks is not trusted
        if ev.event != 4 or status not in (4, 5, 6, 7, 10, 12) or ev.reply:
            out.header = Header.of(ev.header)
        if ev.reply:
            code = ev.reply_code
            out.reply = (m.Ack(ev.reply_seq, code) if ev.reply == m.MsgType.ACK
                         else m.Nack(ev.reply_seq, code))
        if ev.event == 4:
            out.error = ProtocolError(f"frame rejected: {_text(status)}", status_name(status))
        elif ev.event == 3:
            cls = m.Ack if ev.header.type == m.MsgType.ACK else m.Nack
            out.message = cls(ev.ack.acked_seq, ev.ack.code)
        elif ev.event == 2:
            out.payload = self._msg.raw[: ev.msg_len]
            out.message = m.decode_message(ev.header.type, out.payload)
        return out


def _text(status: int) -> str:
    return L.rt().flt_status_str(status).decode()


# ---- sender ------------------------------------------------------------------------------

OB_FRAME, OB_DONE, OB_NACKED, OB_GAVE_UP, OB_FAILED = 1, 2, 3, 4, 5


def _sender(key: C.Array, device_id: int, on_host: bool, first_seq: int,
            chunk: int | None) -> L.Tx:
    """A flt_proto_tx_t set up for one side of one device's link (``key`` must outlive it)."""
    lib = L.rt()
    tx = L.Tx()
    check(lib.flt_proto_tx_init(C.byref(tx), key, device_id, int(on_host), first_seq),
          "sender init")
    if chunk is not None:
        check(lib.flt_proto_tx_set_chunk(C.byref(tx), chunk), f"chunk size {chunk}")
    return tx


class Sender:
    """Sequence numbers, chunking, retransmission: flt_proto_tx_t + a one-slot flt_outbox_t.

    ``load(msg)`` hands the outbox one encoded message (only when ``busy`` is False);
    ``service(now_ms)`` returns the outbox's event and the frame to write, if any;
    ``on_control(ev)`` feeds it a received ACK/NACK; ``reply(ev)`` is the ACK/NACK frame
    answering a received frame."""

    def __init__(self, key: bytes, device_id: int, *, on_host: bool, retx_ms: int,
                 retries: int, chunk: int | None = None, first_seq: int = 1) -> None:
        lib = L.rt()
        self._key = _key(key)
        self.tx = _sender(self._key, device_id, on_host, first_seq, chunk)
        self._slot = (L.OutboxSlot * 1)()
        self.ob = L.Outbox()
        check(lib.flt_outbox_init(C.byref(self.ob), C.byref(self.tx), self._slot, 1,
                                  max(1, retx_ms)), "outbox init")
        self.retries = retries
        self._wire = C.create_string_buffer(L.const("FLT_PROTO_MAX_WIRE"))
        self._buf = C.create_string_buffer(1)

    @property
    def busy(self) -> bool:
        return L.rt().flt_outbox_head(C.byref(self.ob)) >= 0

    @property
    def next_seq(self) -> int:
        return int(self.tx.next_seq)

    def skip_to(self, next_seq: int) -> None:
        """Sequence numbers from ``next_seq`` on for the messages it begins from now on
        (flt_proto_tx_skip_to: never lowers them); a peer that accepted numbers up to
        ``next_seq - 1`` from an earlier host says so in its HELLO (``host_seq``)."""
        if not 1 <= next_seq <= 0xFFFFFFFF:
            raise ProtocolError(f"sequence number {next_seq} out of range", "FLT_ERR_ARG")
        check(L.rt().flt_proto_tx_skip_to(C.byref(self.tx), next_seq), "sender skip")

    @property
    def chunk(self) -> int:
        """Payload bytes per chunk of the messages it begins (flt_proto_tx_t.chunk)."""
        return int(self.tx.chunk)

    def in_flight(self) -> tuple[int, int, int]:
        """(seq, chunk index, chunk count) of the chunk being sent (busy only)."""
        s = self._slot[0]
        return s.o.first_seq + s.index, s.index, s.o.chunk_count

    def load(self, msg_type: int, payload: bytes) -> None:
        lib = L.rt()
        self._buf = C.create_string_buffer(bytes(payload), max(len(payload), 1))
        check(lib.flt_outbox_slot(C.byref(self.ob), 0, self._buf, len(payload), self.retries),
              "outbox slot")
        check(lib.flt_outbox_queue(C.byref(self.ob), 0, msg_type, len(payload)), "outbox queue")

    def service(self, now_ms: int) -> tuple[L.OutboxEvent, bytes]:
        ev = L.OutboxEvent()
        s = L.rt().flt_outbox_service(C.byref(self.ob), now_ms & 0xFFFFFFFF, self._wire,
                                      len(self._wire), C.byref(ev))
        if s != 0:
            raise ProtocolError(f"sending seq {ev.seq} failed: {_text(s)}", status_name(s))
        frame = self._wire.raw[: ev.frame_len] if ev.event == OB_FRAME else b""
        return ev, frame

    def answered(self) -> L.OutboxEvent:
        """The answer to the message in flight arrived (a TRAIN's DELTA or ERROR:
        flt_outbox_answered): DONE when it was sent, else NONE."""
        ev = L.OutboxEvent()
        check(L.rt().flt_outbox_answered(C.byref(self.ob), 0, C.byref(ev)), "outbox answered")
        return ev

    def set_answer_ms(self, answer_ms: int) -> None:
        """Retransmission time of a message confirmed by its answer (a TRAIN: link.h)."""
        check(L.rt().flt_outbox_set_answer_ms(C.byref(self.ob), max(1, answer_ms)),
              "outbox answer time")

    def on_control(self, rx_ev: L.RxEvent) -> L.OutboxEvent:
        ev = L.OutboxEvent()
        check(L.rt().flt_outbox_on_control(C.byref(self.ob), C.byref(rx_ev), C.byref(ev)),
              "outbox ACK")
        return ev

    def reply(self, rx_ev: L.RxEvent) -> bytes:
        n = C.c_size_t(0)
        check(L.rt().flt_proto_tx_reply(C.byref(self.tx), C.byref(rx_ev), self._wire,
                                        len(self._wire), C.byref(n)), "ACK/NACK encoding")
        return self._wire.raw[: n.value]


# ---- wire accounting ---------------------------------------------------------------------


class WireCount:
    """The bytes one device's messages take on a lossless link, counted by the runtime's own
    sender (flt_wire_count, one C call per message): each message's frames, chunked as the
    sender chunks them and with the sender's sequence numbers (their varints grow with them),
    and the ACK the receiver returns for each data frame it acknowledges (flt_proto_ack_mode:
    none for the host's TRAIN and small GLOBALs, which the device's answer confirms). The
    simulator's byte figures come from here, so they are the wire's."""

    def __init__(self, key: bytes, device_id: int, chunk: int | None = None) -> None:
        self.key, self.device_id, self.chunk = bytes(key), device_id, chunk
        self._key = _key(key)
        self._tx = {h: _sender(self._key, device_id, h, 1, chunk)  # the host's, the device's
                    for h in (True, False)}
        self._frames, self._acks = C.c_uint64(0), C.c_uint64(0)
        self.up = 0  # device -> host bytes so far
        self.down = 0

    @property
    def seq(self) -> dict[bool, int]:
        """The next sequence number of each sender (True: the host's)."""
        return {h: int(tx.next_seq) for h, tx in self._tx.items()}

    def send(self, msg: m.Message, *, from_host: bool) -> int:
        """Counts ``msg`` sent one way and its ACKs the other; returns the bytes it added."""
        payload = msg.encode()
        self._frames.value = self._acks.value = 0
        check(L.rt().flt_wire_count(C.byref(self._tx[from_host]), C.byref(self._tx[not from_host]),
                                    int(msg.TYPE), payload, len(payload),
                                    C.byref(self._frames), C.byref(self._acks)),
              f"counting a {msg.TYPE.name} message")
        frames, acks = int(self._frames.value), int(self._acks.value)
        if from_host:
            self.down += frames
            self.up += acks
        else:
            self.up += frames
            self.down += acks
        return frames + acks
