"""Named invalid-frame fixtures swept through the C receiver (flt_proto_rx_feed) and the Python
oracle receiver (tests/oracles/receiver.py): both must reject each with the same status and the
same answer (NACK / duplicate ACK / nothing), and accept the next valid frame afterwards."""

from __future__ import annotations

import ctypes as C
import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
import pytest
from oracles import cobs
from oracles import messages as m
from oracles import protocol as p
from oracles.receiver import Receiver
from test_proto_native import CRx

from fltiny.native import proto

KEY = hashlib.sha256(b"fault key").digest()
OTHER_KEY = hashlib.sha256(b"another device").digest()
DEV = 0x42
HOST = p.FLAG_FROM_HOST
TRAIN = m.Train(round=1, epochs=1, batch_size=8, learning_rate=0.1, topk_count=5).encode()
MSG_CAP = 600  # both receivers' reassembly buffers (a 1012-byte GLOBAL does not fit)


def raw_frame(*, version=3, type=m.MsgType.TRAIN, from_host=True, chunked=None, device_id=DEV,
              seq=5, index=0, count=1, payload=TRAIN, key=KEY, head=None) -> bytes:
    """A decoded frame with any header fields (the CHUNKED bit by default when count > 1;
    ``head``: these header bytes instead) and a valid tag."""
    if head is None:
        chunked = count > 1 if chunked is None else chunked
        first = version << 6 | (0x20 if from_host else 0) | (0x10 if chunked else 0) | type
        head = bytes([first]) + p.varint(device_id) + p.varint(seq)
        if chunked:
            head += p.varint(index) + p.varint(count)
    body = head + payload
    return body + hmac.new(key, body, hashlib.sha256).digest()[:8]


def header_byte(type=m.MsgType.TRAIN) -> int:
    return 3 << 6 | 0x20 | type


def wire(raw: bytes) -> bytes:
    return cobs.encode(raw) + b"\x00"


def flip(raw: bytes, bit: int) -> bytes:
    b = bytearray(raw)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def chunks(msg: m.Message, first_seq: int) -> list[bytes]:
    payload = msg.encode()
    n = p.chunk_count(len(payload))
    return [wire(raw_frame(type=msg.TYPE, seq=first_seq + i, index=i, count=n,
                           payload=payload[i * 256 : (i + 1) * 256])) for i in range(n)]


BIG = m.Global.full(1, np.linspace(-1, 1, 250, dtype=np.float32))  # 1012 bytes, 4 chunks
GOOD = wire(raw_frame(seq=5))
ACK, NACK = int(m.MsgType.ACK), int(m.MsgType.NACK)


@dataclass(frozen=True)
class Fault:
    before: tuple[bytes, ...]  # accepted frames sent first
    bad: bytes
    status: str
    reply: tuple[int, int, int] | None  # (type, code, seq)


def _truncated_cobs() -> bytes:
    enc = cobs.encode(raw_frame(seq=5))
    code = enc[0]  # cut inside the first block
    assert code > 3
    return enc[: code - 1] + b"\x00"


FAULTS = {
    "bit_flip_header": Fault((), wire(flip(raw_frame(), 8 * 2 + 1)), "FLT_ERR_AUTH", None),
    "bit_flip_type": Fault((), wire(flip(raw_frame(), 1)), "FLT_ERR_AUTH", None),
    "bit_flip_payload": Fault((), wire(flip(raw_frame(), 8 * 20)), "FLT_ERR_AUTH", None),
    "bit_flip_tag": Fault((), wire(flip(raw_frame(), 8 * 40 + 7)), "FLT_ERR_AUTH", None),
    "truncated_frame": Fault((), wire(raw_frame()[:-3]), "FLT_ERR_AUTH", None),
    "truncated_below_minimum": Fault((), wire(raw_frame()[:10]), "FLT_ERR_TRUNCATED", None),
    "truncated_cobs_block": Fault((), _truncated_cobs(), "FLT_ERR_FORMAT", None),
    "wrong_key": Fault((), wire(raw_frame(key=OTHER_KEY)), "FLT_ERR_AUTH", None),
    "other_device": Fault((), wire(raw_frame(device_id=DEV + 1)), "FLT_ERR_AUTH", None),
    "reflected_direction": Fault((), wire(raw_frame(from_host=False)), "FLT_ERR_AUTH", None),
    "version_1_frame": Fault((), wire(bytes([1, 3, 1, 0]) + bytes(60)), "FLT_ERR_UNSUPPORTED",
                             None),
    # a version-2 frame (per-frame ACKs, the 24-byte DELTA head): refused before its tag
    "version_2_frame": Fault((), wire(raw_frame(version=2)), "FLT_ERR_UNSUPPORTED", None),
    "bad_version": Fault((), wire(raw_frame(version=0)), "FLT_ERR_UNSUPPORTED", None),
    # 11 is SECAGG (docs/protocol.md): 12 is the first type without a message
    "unknown_type": Fault((), wire(raw_frame(type=12)), "FLT_ERR_UNSUPPORTED", None),
    "secagg_unknown_kind": Fault((), wire(raw_frame(type=m.MsgType.SECAGG, payload=b"\x08\0")),
                                 "FLT_ERR_UNSUPPORTED", (NACK, 7, 5)),
    "secagg_kind_only": Fault((), wire(raw_frame(type=m.MsgType.SECAGG, payload=b"\x01")),
                              "FLT_ERR_TRUNCATED", (NACK, 4, 5)),
    "chunked_single_frame": Fault((), wire(raw_frame(chunked=True, count=1)), "FLT_ERR_FORMAT",
                                  None),
    "chunk_index_past_count": Fault((), wire(raw_frame(index=2, count=2)), "FLT_ERR_FORMAT",
                                    None),
    "chunk_count_zero": Fault((), wire(raw_frame(chunked=True, count=0)), "FLT_ERR_FORMAT",
                              None),
    "chunk_count_above_16_bits": Fault((), wire(raw_frame(index=1, count=70000)),
                                       "FLT_ERR_FORMAT", None),
    "overlong_varint": Fault((), wire(raw_frame(head=bytes([header_byte(), DEV, 0x85, 0x00]))),
                             "FLT_ERR_FORMAT", None),
    "varint_above_32_bits": Fault((), wire(raw_frame(
        head=bytes([header_byte(), 0xC2, 0x80, 0x80, 0x80, 0x10, 5]))), "FLT_ERR_FORMAT", None),
    "header_runs_into_tag": Fault((), wire(raw_frame(head=bytes([header_byte(), DEV, 0x85]),
                                                     payload=b"\x80\x80")),
                                  "FLT_ERR_TRUNCATED", None),
    "oversize_payload": Fault((), wire(raw_frame(payload=bytes(range(1, 250)) + bytes(8))),
                              "FLT_ERR_OVERSIZE", None),
    "oversize_frame": Fault((), wire(raw_frame(payload=bytes(range(1, 250)) * 2)),
                            "FLT_ERR_OVERSIZE", None),
    "replayed_frame": Fault((GOOD,), wire(raw_frame(seq=4)), "FLT_ERR_REPLAY", (NACK, 13, 4)),
    "duplicated_frame": Fault((GOOD,), GOOD, "FLT_ERR_DUPLICATE", (ACK, 1, 5)),
    # found by firmware/fuzz/link_rx.c: a NACK of seq 0 cannot be encoded (acked_seq >= 1), so
    # the host's Session.poll raised building it; seq 0 is now refused without an answer
    "seq_zero": Fault((), wire(raw_frame(seq=0)), "FLT_ERR_REPLAY", None),
    "invalid_message": Fault((), wire(raw_frame(payload=b"\x01\x00\x00\x00\x00" + TRAIN[5:])),
                             "FLT_ERR_RANGE", (NACK, 3, 5)),
    "train_unknown_flag": Fault((), wire(raw_frame(payload=TRAIN[:32] + b"\x08\0\0\0")),
                                "FLT_ERR_UNSUPPORTED", (NACK, 7, 5)),
    "wrong_message_size": Fault((), wire(raw_frame(payload=TRAIN[:-1])), "FLT_ERR_TRUNCATED",
                                (NACK, 4, 5)),
    "chunk_missing_first": Fault((), chunks(BIG, 10)[1], "FLT_ERR_ORDER", (NACK, 15, 11)),
    "chunk_skipped": Fault((chunks(BIG, 10)[0],), wire(raw_frame(
        type=BIG.TYPE, seq=12, index=2, count=4, payload=BIG.encode()[512:768])),
        "FLT_ERR_ORDER", (NACK, 15, 12)),
    "chunk_type_changed": Fault((chunks(BIG, 10)[0],), wire(raw_frame(
        type=m.MsgType.STATUS, seq=11, index=1, count=4, payload=b"x")), "FLT_ERR_ORDER",
        (NACK, 15, 11)),
    "message_too_large": Fault(tuple(chunks(BIG, 10)[:2]), chunks(BIG, 10)[2], "FLT_ERR_NOMEM",
                               (NACK, 8, 12)),
    "control_with_seq": Fault((), wire(raw_frame(type=ACK, seq=3, payload=b"\x05\0\0\0\0")),
                              "FLT_ERR_FORMAT", None),
    "control_bad_code": Fault((), wire(raw_frame(type=ACK, seq=0, payload=b"\x05\0\0\0\x07")),
                              "FLT_ERR_RANGE", None),
}


def py_outcome(rx: Receiver, data: bytes) -> list[tuple[str, tuple | None]]:
    out = []
    for ev in rx.feed(data):
        r = ev.reply
        out.append((ev.error.status if ev.error else "FLT_OK",
                    (int(r.TYPE), r.code, r.acked_seq) if r else None))
    return out


def c_outcome(rx: CRx, data: bytes) -> list[tuple[str, tuple | None]]:
    return [(e.status, e.reply if e.reply[0] else None) for e in rx.feed(data)]


@pytest.fixture(params=list(FAULTS), ids=list(FAULTS))
def fault(request) -> Fault:
    return FAULTS[request.param]


def primed(rx, last_seq: int = 4):
    """A device receiver that accepted host frames up to ``last_seq`` (so the fixtures' TRAIN
    of seq 5 directly follows the host's previous frame: docs/protocol.md "Answered
    messages")."""
    if isinstance(rx, CRx):
        assert rx.so.flt_proto_rx_resume_after(C.byref(rx.rx), C.c_uint32(last_seq)) == 0
    else:
        rx.last_seq = last_seq
    return rx


STATUS_100 = wire(raw_frame(type=m.MsgType.STATUS, seq=100, payload=b"status"))


@pytest.mark.parametrize("side", ["c", "python"])
def test_fault_rejected_with_reason(fault, side):
    if side == "c":
        rx = primed(CRx(KEY, DEV, on_host=False, msg_cap=MSG_CAP))
        outcome = lambda d: c_outcome(rx, d)  # noqa: E731
    else:
        rx = primed(Receiver(KEY, DEV, on_host=False, max_message=MSG_CAP))
        outcome = lambda d: py_outcome(rx, d)  # noqa: E731
    for frame in fault.before:
        assert [s for s, _ in outcome(frame)] == ["FLT_OK"]
    assert outcome(fault.bad) == [(fault.status, fault.reply)]
    # the receiver is not stuck: a fresh valid frame with a newer seq is accepted
    assert outcome(STATUS_100) == [("FLT_OK", (ACK, 0, 100))]


@pytest.mark.parametrize("side", ["c", "python"])
def test_answered_messages_get_no_ack_and_a_train_after_a_lost_frame_is_refused(side):
    """Version 3 (docs/protocol.md "Answered messages"): an accepted host TRAIN and the frames
    of a host GLOBAL of at most 4 chunks get no ACK (the DELTA answering the TRAIN confirms
    both); their duplicates are ACKed (code 1); a TRAIN whose seq does not follow the last
    accepted one (a GLOBAL frame before it was lost) is NACKed ORDER, and so is its
    retransmission, until the GLOBAL comes again; a GLOBAL of 5+ chunks is ACKed per chunk."""
    def make():
        return (CRx(KEY, DEV, on_host=False, msg_cap=4096) if side == "c"
                else Receiver(KEY, DEV, on_host=False, max_message=4096))

    def outcome(rx, data):
        return c_outcome(rx, data) if side == "c" else py_outcome(rx, data)

    small = chunks(BIG, 10)  # 4 chunks: seq 10..13, then the TRAIN at 14
    train = wire(raw_frame(seq=14))
    rx = make()
    assert outcome(rx, b"".join(small) + train) == [("FLT_OK", None)] * 5
    assert outcome(rx, train) == [("FLT_ERR_DUPLICATE", (ACK, 1, 14))]
    # the last GLOBAL chunk lost: the TRAIN (and its retransmission) refused, nothing trains
    rx = make()
    assert outcome(rx, b"".join(small[:3])) == [("FLT_OK", None)] * 3
    assert outcome(rx, train) == [("FLT_ERR_ORDER", (NACK, 15, 14))]
    assert outcome(rx, train) == [("FLT_ERR_ORDER", (NACK, 15, 14))]
    # the whole (one-frame) GLOBAL lost: its TRAIN does not follow the last accepted seq
    rx = primed(make(), 8)
    assert outcome(rx, wire(raw_frame(seq=10))) == [("FLT_ERR_ORDER", (NACK, 15, 10))]
    # the GLOBAL again (new seqs), then the TRAIN: accepted
    assert outcome(rx, b"".join(chunks(BIG, 20)) + wire(raw_frame(seq=24))) == [
        ("FLT_OK", None)] * 5
    # a GLOBAL of five chunks: an ACK per chunk (a burst would lose too much on a noisy line)
    big = m.Global.full(1, np.linspace(-1, 1, 300, dtype=np.float32))
    rx = make()
    assert outcome(rx, b"".join(chunks(big, 30))) == [
        ("FLT_OK", (ACK, 0, 30 + i)) for i in range(5)]


def test_every_reply_the_receiver_asks_for_can_be_sent(fault):
    """Regression (found by firmware/fuzz/link_rx.c): the host answers every frame through
    Sender.reply (fltiny/bridge/session.py), so an answer the C sender cannot encode raised out
    of Session.poll. Every reply asked for must encode and decode as that ACK/NACK."""
    rx = proto.Receiver(KEY, DEV, on_host=False, max_message=MSG_CAP)
    tx = proto.Sender(KEY, DEV, on_host=False, retx_ms=100, retries=0)
    for data in (*fault.before, fault.bad):
        for ev in rx.feed(data):
            if ev.reply is not None:
                fr = proto.decode_wire(tx.reply(ev.c), KEY)
                assert fr.header.type == ev.reply.TYPE and fr.header.seq == 0
                assert fr.payload == ev.reply.encode()


def test_noise_and_idle_delimiters_are_harmless():
    rx_c = CRx(KEY, DEV, on_host=False)
    rx_p = Receiver(KEY, DEV, on_host=False)
    data = b"\x00\x00" + bytes(range(1, 200)) + b"\x00\x00\x00" + STATUS_100
    c, py = c_outcome(rx_c, data), py_outcome(rx_p, data)
    assert c == py
    assert c[-1] == ("FLT_OK", (ACK, 0, 100))


def test_twenty_kilobyte_global_through_small_chunks():
    """A 20 kB GLOBAL reassembles exactly in the C receiver, one ACK per 256-byte chunk."""
    params = np.random.default_rng(5).standard_normal(5000).astype(np.float32)
    msg = m.Global.full(3, params)
    frames = chunks(msg, 1000)
    assert len(frames) == 79
    rx = CRx(KEY, DEV, on_host=False, msg_cap=20012)
    evs = rx.feed(b"".join(frames))
    assert [e.status for e in evs] == ["FLT_OK"] * 79
    assert [e.reply for e in evs] == [(ACK, 0, 1000 + i) for i in range(79)]
    assert evs[-1].kind == 2 and evs[-1].payload == msg.encode()
    assert np.array_equal(m.Global.decode(evs[-1].payload).params, params)
    # one byte less of buffer: the last chunk is refused, nothing delivered
    rx = CRx(KEY, DEV, on_host=False, msg_cap=20011)
    evs = rx.feed(b"".join(frames))
    assert evs[-1].status == "FLT_ERR_NOMEM" and not any(e.kind == 2 for e in evs)
