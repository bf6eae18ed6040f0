"""The outbox state machine (firmware/runtime/proto/outbox.c), driven the way the device loop
drives it: three slots (HELLO, DELTA, ERROR), a millisecond clock, ACKs built by the C
receiver side. Each property of the contract in outbox.h has a test."""

from __future__ import annotations

import ctypes as C
import hashlib

import numpy as np
import pytest
from oracles import messages as om
from oracles import protocol as op
from test_proto_native import CRx, CTx

from fltiny.native import lib as L
from fltiny.native.status import status_name

KEY = hashlib.sha256(b"outbox key").digest()
DEV = 0x0B0B
RETX = 400
FRAME, DONE, NACKED, GAVE_UP, FAILED = 1, 2, 3, 4, 5


class Box:
    """A device-side outbox: slot 0 HELLO (retries forever), 1 DELTA and 2 ERROR (3 retries)."""

    def __init__(self, chunk: int | None = None) -> None:
        self.lib = L.rt()
        self.key = C.create_string_buffer(KEY, 32)
        self.tx = L.Tx()
        assert self.lib.flt_proto_tx_init(C.byref(self.tx), self.key, DEV, 0, 1) == 0
        if chunk:
            assert self.lib.flt_proto_tx_set_chunk(C.byref(self.tx), chunk) == 0
        self.slots = (L.OutboxSlot * 3)()
        self.ob = L.Outbox()
        assert self.lib.flt_outbox_init(C.byref(self.ob), C.byref(self.tx), self.slots, 3,
                                        RETX) == 0
        self.bufs = [C.create_string_buffer(1200) for _ in range(3)]
        for i, retries in enumerate((0xFFFFFFFF, 3, 3)):
            assert self.lib.flt_outbox_slot(C.byref(self.ob), i, self.bufs[i], 1200,
                                            retries) == 0
        self.wire = C.create_string_buffer(400)
        self.host_rx = CRx(KEY, DEV, on_host=True)
        self.host_tx = CTx(KEY, DEV, on_host=True)

    def queue(self, slot: int, type_: int, payload: bytes) -> int:
        C.memmove(self.bufs[slot], payload, len(payload))
        return self.lib.flt_outbox_queue(C.byref(self.ob), slot, type_, len(payload))

    def service(self, now: int) -> tuple[L.OutboxEvent, bytes]:
        ev = L.OutboxEvent()
        assert self.lib.flt_outbox_service(C.byref(self.ob), now, self.wire, 400,
                                           C.byref(ev)) == 0
        return ev, self.wire.raw[: ev.frame_len] if ev.event == FRAME else b""

    def answer(self, frame: bytes, nack: int = 0) -> L.OutboxEvent:
        """The host receives `frame` and answers; the device feeds the answer to the outbox."""
        (hev,) = self.host_rx.feed(frame)
        reply = (6, nack, hev.header.seq) if nack else hev.reply
        return self.control(self.host_tx.reply(reply))

    def control(self, reply_wire: bytes) -> L.OutboxEvent:
        dev_rx = CRx(KEY, DEV, on_host=False)
        dev_rx.feed(reply_wire)
        # rebuild the C event the device receiver produced (CRx keeps only a summary)
        rx_ev = L.RxEvent()
        fr = op.decode_wire(reply_wire, KEY)
        rx_ev.event = 3
        rx_ev.header.type = fr.header.type
        rx_ev.ack.acked_seq = int.from_bytes(fr.payload[:4], "little")
        rx_ev.ack.code = fr.payload[4]
        ev = L.OutboxEvent()
        assert self.lib.flt_outbox_on_control(C.byref(self.ob), C.byref(rx_ev), C.byref(ev)) == 0
        return ev

    @property
    def head(self) -> int:
        return self.lib.flt_outbox_head(C.byref(self.ob))


def test_fifo_and_sequence_numbers_taken_at_the_head():
    b = Box()
    assert b.queue(1, 7, b"status one") == 0  # any data type: the outbox does not look inside
    assert b.queue(2, 9, b"\x00\x00err") == 0
    ev, f1 = b.service(0)
    assert (ev.event, ev.slot, ev.seq, ev.tries) == (FRAME, 1, 1, 1)
    assert b.answer(f1).event == DONE
    ev, f2 = b.service(1)
    assert (ev.event, ev.slot, ev.seq) == (FRAME, 2, 2)  # seq 2: taken when it became head
    done = b.answer(f2)
    assert (done.event, done.slot, done.seq) == (DONE, 2, 2)
    assert b.head == -1 and b.service(2)[0].event == 0


def test_requeue_replaces_and_moves_to_the_back():
    b = Box()
    b.queue(1, 7, b"first")
    b.queue(2, 9, b"\x00\x00e")
    b.queue(1, 7, b"second")  # replaces slot 1 and queues it behind slot 2
    ev, frame = b.service(0)
    assert ev.slot == 2
    b.answer(frame)
    ev, frame = b.service(1)
    assert ev.slot == 1 and op.decode_wire(frame, KEY).payload == b"second"


def test_retransmits_identically_after_the_timeout_then_gives_up():
    b = Box()
    b.queue(1, 4, b"x" * 5)
    sent = []
    t = 0
    for _ in range(20):
        ev, frame = b.service(t)
        if ev.event == FRAME:
            sent.append((t, ev.tries, frame))
        if ev.event == GAVE_UP:
            break
        t += 100
    assert [s[:2] for s in sent] == [(0, 1), (400, 2), (800, 3), (1200, 4)]
    assert len({s[2] for s in sent}) == 1
    assert (ev.event, ev.slot, ev.tries, t) == (GAVE_UP, 1, 4, 1600)
    assert b.head == -1


def test_hello_retries_forever_and_the_clock_may_wrap():
    b = Box()
    b.queue(0, 1, bytes(44))
    t = 0xFFFFFF00
    tries = 0
    for _ in range(40):
        ev, _ = b.service(t & 0xFFFFFFFF)
        tries += ev.event == FRAME
        assert ev.event in (0, FRAME)
        t += RETX
    assert tries == 40


def test_nack_drops_the_message_with_the_peer_code():
    b = Box()
    b.queue(1, 7, b"x" * 5)
    _, frame = b.service(0)
    ev = b.answer(frame, nack=8)
    assert (ev.event, ev.slot, ev.code) == (NACKED, 1, 8)
    assert b.head == -1


def test_stale_ack_is_ignored_and_chunks_go_one_by_one():
    b = Box(chunk=64)
    msg = om.Global.full(1, np.arange(47, dtype=np.float32)).encode()  # 200 bytes: 64+64+64+8
    b.queue(1, 2, msg)
    ev, f0 = b.service(0)
    assert (ev.index, ev.chunk_count) == (0, 4)
    stale = b.host_tx.reply((5, 0, ev.seq + 1))  # an ACK of a chunk not sent yet
    assert b.control(stale).event == 0
    assert b.service(10)[0].event == 0  # still waiting for chunk 0's ACK
    assert b.answer(f0).event == 0  # moves to chunk 1
    got = [op.decode_wire(f0, KEY).payload]
    for i in range(1, 4):
        ev, f = b.service(20 + i)
        assert (ev.event, ev.index) == (FRAME, i)
        got.append(op.decode_wire(f, KEY).payload)
        last = b.answer(f)
    assert last.event == DONE and (last.index, last.chunk_count) == (3, 4)
    assert b"".join(got) == msg


@pytest.mark.parametrize("slot,type_,length", [(3, 4, 1), (1, 5, 1), (1, 4, 1201), (1, 0, 1)])
def test_bad_queue_calls_are_refused(slot, type_, length):
    b = Box()
    assert b.lib.flt_outbox_queue(C.byref(b.ob), slot, type_, length) == 1  # FLT_ERR_ARG
    assert b.head == -1


def test_sequence_numbers_exhausted_fails_and_drops():
    b = Box()
    b.tx.next_seq = 0xFFFFFFFF
    b.queue(1, 4, bytes(300))  # needs 2 sequence numbers, 1 left
    ev = L.OutboxEvent()
    assert b.lib.flt_outbox_service(C.byref(b.ob), 0, b.wire, 400, C.byref(ev)) == 11
    assert ev.event == FAILED and b.head == -1


def test_cancel_drops_a_message_sent_in_part_and_the_peer_takes_the_next():
    """A DELTA of 3 chunks cancelled after its first chunk (the device retrains into its
    buffer): nothing more of it is sent, its numbers are not reused, and the host's receiver
    abandons it and delivers the next message whole."""
    b = Box(chunk=16)
    assert b.queue(1, 7, b"A" * 40) == 0  # 3 chunks: seq 1, 2, 3
    ev, f1 = b.service(0)
    assert (ev.event, ev.seq, ev.chunk_count) == (FRAME, 1, 3)
    assert b.answer(f1).event == 0  # chunk 1 acknowledged, chunk 2 is next
    assert b.lib.flt_outbox_cancel(C.byref(b.ob), 1) == 0
    assert b.head == -1 and b.service(RETX * 2)[0].event == 0  # nothing more of it
    assert b.lib.flt_outbox_cancel(C.byref(b.ob), 1) == 0  # not queued: no change
    assert status_name(b.lib.flt_outbox_cancel(C.byref(b.ob), 3)) == "FLT_ERR_ARG"
    assert b.queue(1, 7, b"fresh") == 0
    ev, f2 = b.service(RETX * 3)
    assert (ev.event, ev.seq, ev.chunk_count) == (FRAME, 4, 1)
    (hev,) = b.host_rx.feed(f2)
    assert (hev.status, hev.kind, hev.payload) == ("FLT_OK", 2, b"fresh")  # 2: MESSAGE
