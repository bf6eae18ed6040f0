"""The reliability layer: fltiny.bridge.session.Session (the C receiver and outbox through
fltiny.native) over a simulated lossy link (seeded
byte corruption and drops, fake clock), against a Python peer and against the C receiver.
Every message must arrive exactly once, in order, and no corrupted payload may be accepted."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from test_proto_native import CRx, CTx

from fltiny.bridge import messages as m
from fltiny.bridge.session import Session
from fltiny.native import proto
from fltiny.native.errors import DeliveryError, NackError

KEY = hashlib.sha256(b"session key").digest()
DEV = 0x5EED


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class LossyLine:
    """One direction of a serial line: each byte is dropped with p_drop, else has one random
    bit flipped with p_corrupt (a flip may create or destroy a 0x00 delimiter)."""

    def __init__(self, rng: np.random.Generator, p_corrupt: float, p_drop: float) -> None:
        self.rng = rng
        self.p_corrupt = p_corrupt
        self.p_drop = p_drop
        self.pending = bytearray()
        self.corrupted = 0

    def send(self, data: bytes) -> None:
        a = np.frombuffer(data, np.uint8).copy()
        u = self.rng.random(a.size)
        flip = u < self.p_corrupt
        a[flip] ^= (1 << self.rng.integers(0, 8, int(flip.sum()))).astype(np.uint8)
        self.corrupted += int(flip.sum())
        keep = self.rng.random(a.size) >= self.p_drop
        self.pending += a[keep].tobytes()

    def receive(self) -> bytes:
        n = int(self.rng.integers(0, 200))  # arbitrary read sizes, frames split anywhere
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out


def _messages(rng: np.random.Generator, from_host: bool, count: int) -> list[m.Message]:
    out: list[m.Message] = []
    for i in range(count):
        kind = i % 4
        if from_host and kind == 0:
            # 6 chunks of 64 bytes: ACKed per chunk (a GLOBAL of at most 4 is a burst that the
            # answer to its TRAIN confirms, so only the round's caller can resend it: below)
            out.append(m.Global.full(i + 1, rng.standard_normal(80).astype(np.float32)))
        elif from_host and kind == 1:
            out.append(m.Train(round=i, epochs=1 + i % 3, batch_size=16, learning_rate=0.01,
                               topk_fraction=0.05, seed=i))
        elif kind == 0:
            out.append(m.Hello(f"dev-{i}", 1, 2, bytes(8), i, 100, 2048))
        elif kind == 1:
            out.append(m.Log(f"log {i} " + "x" * int(rng.integers(0, 40))))
        else:
            out.append(m.Status(f"{'host' if from_host else 'dev'} status {i}"))
    return out


def _pump(sessions, clock, steps, dt=0.01):
    for _ in range(steps):
        for s in sessions:
            s.poll()
        clock.t += dt
        if all(s.idle for s in sessions) and not any(
                s._line_in.pending for s in sessions):
            return
    raise AssertionError("simulation did not finish")


@pytest.mark.parametrize("seed", [1, 2])
def test_lossy_link_exactly_once(seed):
    rng = np.random.default_rng(seed)
    clock = Clock()
    to_dev = LossyLine(np.random.default_rng(seed + 100), p_corrupt=0.01, p_drop=0.002)
    to_host = LossyLine(np.random.default_rng(seed + 200), p_corrupt=0.01, p_drop=0.002)
    common = dict(key=KEY, device_id=DEV, clock=clock, timeout=0.1, retries=60, max_chunk=64)
    host = Session(send=to_dev.send, receive=to_host.receive, on_host=True, **common)
    dev = Session(send=to_host.send, receive=to_dev.receive, on_host=False, **common)
    host._line_in, dev._line_in = to_host, to_dev
    down = _messages(rng, True, 40)
    up = _messages(rng, False, 40)
    for msg in down:
        host.submit(msg)
    for msg in up:
        dev.submit(msg)
    _pump([host, dev], clock, 200_000)
    assert list(dev.inbox) == down  # exactly once, in order, uncorrupted
    assert list(host.inbox) == up
    # the faults really happened and were caught by the right layer
    assert to_dev.corrupted > 20 and to_host.corrupted > 20
    rejected = set(host.stats.rejected) | set(dev.stats.rejected)
    assert "FLT_ERR_AUTH" in rejected and "FLT_ERR_DUPLICATE" in rejected  # the tag catches corruption
    assert host.stats.retransmissions > 0 and dev.stats.retransmissions > 0


def test_lossy_link_to_the_c_receiver():
    """Host session -> lossy line -> C receiver on the 'device', whose ACK/NACKs (built by
    flt_proto_tx_reply) come back over a lossy line."""
    clock = Clock()
    to_dev = LossyLine(np.random.default_rng(7), p_corrupt=0.005, p_drop=0.001)
    to_host = LossyLine(np.random.default_rng(8), p_corrupt=0.005, p_drop=0.001)
    host = Session(key=KEY, device_id=DEV, send=to_dev.send, receive=to_host.receive,
                   on_host=True, clock=clock, timeout=0.1, retries=60)
    rx = CRx(KEY, DEV, on_host=False, msg_cap=21000)
    tx = CTx(KEY, DEV, on_host=False)
    params = np.random.default_rng(9).standard_normal(5000).astype(np.float32)
    sent = [m.Global.full(2, params),
            m.Train(round=1, epochs=1, batch_size=8, learning_rate=0.1, topk_count=50)]
    for msg in sent:
        host.submit(msg)
    got = []
    for _ in range(100_000):
        host.poll()
        for ev in rx.feed(to_dev.receive()):
            if ev.reply[0]:
                to_host.send(tx.reply(ev))
            if ev.kind == 2:
                got.append(m.decode_message(ev.header.type, ev.payload))
        clock.t += 0.01
        if host.idle and not to_dev.pending:
            break
    assert got == sent
    assert np.array_equal(got[0].params, params)


def test_gives_up_after_retries_with_clear_error():
    clock = Clock()
    sent = []
    s = Session(key=KEY, device_id=DEV, send=sent.append, receive=lambda: b"", clock=clock,
                timeout=0.5, retries=3)
    s.submit(m.Status("hello?"))
    with pytest.raises(DeliveryError, match=r"not acknowledged after 4 tries"):
        for _ in range(1000):
            s.poll()
            clock.t += 0.1
    assert len(sent) == 4 and len(set(sent)) == 1  # retransmissions are byte-identical
    assert s.idle


def _wired_pair(**dev_kw) -> tuple[Session, Session]:
    """A host and a device session joined by two lossless in-memory lines."""
    clock = Clock()
    a_to_b, b_to_a = bytearray(), bytearray()

    def take(buf):
        def f():
            out = bytes(buf)
            buf.clear()
            return out
        return f

    host = Session(key=KEY, device_id=DEV, send=a_to_b.extend, receive=take(b_to_a),
                   clock=clock)
    dev = Session(key=KEY, device_id=DEV, send=b_to_a.extend, receive=take(a_to_b),
                  on_host=False, clock=clock, **dev_kw)
    return host, dev


def test_nack_raises_with_the_peer_reason():
    host, dev = _wired_pair(max_message=300)
    host.submit(m.Global.full(1, np.zeros(300, np.float32)))  # 1212 bytes > 300, 5 chunks
    with pytest.raises(NackError) as info:
        for _ in range(20):
            host.poll()
            dev.poll()
    assert info.value.status == "FLT_ERR_NOMEM"
    assert not dev.inbox


def test_replayed_ack_does_not_complete_a_newer_frame():
    clock = Clock()
    wire = []
    s = Session(key=KEY, device_id=DEV, send=wire.append, receive=lambda: b"", clock=clock)
    s.submit(m.Status("one"))
    s.poll()
    old_ack_from = CTx(KEY, DEV, on_host=False).reply((m.MsgType.ACK, 0, 1))
    s._receive = lambda: old_ack_from
    s.poll()
    assert s.idle
    s.submit(m.Status("two"))
    s.poll()  # sends seq 2; the replayed ACK of seq 1 must not complete it
    s.poll()
    assert not s.idle and s.sending_seq == 2


def test_a_new_host_continues_above_the_seq_a_running_peer_accepted():
    """A host session that starts at 1 against a peer that accepted numbers up to 40 from an
    earlier host is refused (REPLAY); once it skips to above 40 (the peer's HELLO host_seq)
    its messages go through. Skipping never lowers the numbers, and 0 is refused."""
    host, dev = _wired_pair()
    dev.receiver.resume_after(40)
    dev.receiver.resume_after(7)  # never lowers
    host.submit(m.Status("first"))
    with pytest.raises(NackError) as info:
        for _ in range(20):
            host.poll()
            dev.poll()
    assert info.value.status == "FLT_ERR_REPLAY" and not dev.inbox
    host.sender.skip_to(41)
    host.sender.skip_to(3)  # never lowers
    assert host.sender.next_seq == 41
    with pytest.raises(Exception, match="out of range"):
        host.sender.skip_to(0)
    host.submit(m.Status("second"))
    for _ in range(20):
        host.poll()
        dev.poll()
    assert host.idle and [x.text for x in dev.inbox] == ["second"]


def _c_device(host: Session, rx: CRx, tx: CTx, line: list[bytes], drop=lambda frame: False):
    """What the host sent, fed to a C device receiver (``drop`` loses frames); returns the
    device's events and sends its ACK/NACKs back over ``line``."""
    evs = []
    for frame in host_frames(host):
        if drop(frame):
            continue
        for ev in rx.feed(frame):
            evs.append(ev)
            if ev.reply[0]:
                line.append(tx.reply(ev))
    return evs


def host_frames(host: Session) -> list[bytes]:
    out = list(host._sent)
    host._sent.clear()
    return out


def test_answered_messages_round_without_acks():
    """Version 3 (docs/protocol.md "Answered messages"): a host GLOBAL of two chunks goes out
    as a burst, its TRAIN right behind it, and the device sends no ACK for any of the three:
    the session completes the TRAIN when its DELTA arrives. Lost frames: the TRAIN is probed
    after answer_timeout (a duplicate is ACKed code 1: done, the DELTA comes later); a lost
    GLOBAL chunk makes the device NACK the TRAIN (ORDER), raised as NackError for the caller
    to send the GLOBAL again."""
    clock = Clock()
    back: list[bytes] = []
    host = Session(key=KEY, device_id=DEV, send=lambda b: host._sent.append(b),
                   receive=lambda: back.pop(0) if back else b"", clock=clock, timeout=0.3)
    host._sent = []
    assert host.answer_timeout == 2.4
    glob = m.Global.full(3, np.linspace(-1, 1, 100, dtype=np.float32))  # 412 bytes: 2 chunks
    train = m.Train(round=4, epochs=1, batch_size=8, learning_rate=0.1, topk_count=5)
    rx, tx = CRx(KEY, DEV, on_host=False, msg_cap=4096), CTx(KEY, DEV, on_host=False)
    dev_tx = proto.Sender(KEY, DEV, on_host=False, retx_ms=300, retries=3)
    host.submit(glob)
    t = host.submit(train)
    host.poll()  # one poll: the burst and the TRAIN
    evs = _c_device(host, rx, tx, back)
    assert [(e.status, e.kind, e.reply[0]) for e in evs] == [("FLT_OK", 1, 0), ("FLT_OK", 2, 0),
                                                             ("FLT_OK", 2, 0)]
    assert not host.pending(1) and host.pending(t) and not back
    clock.t += 1.0
    host.poll()
    assert host_frames(host) == []  # within answer_timeout: no probe
    delta = m.Delta(4, 3, 10, 0.5, b"")
    dev_tx.load(m.MsgType.DELTA, delta.encode())
    back.append(dev_tx.service(0)[1])
    host.poll()
    assert not host.pending(t) and host.idle and host.inbox[-1] == delta
    assert host.stats.retransmissions == 0
    assert len(host_frames(host)) == 1  # its ACK of the DELTA (the device commits on it)
    # a lost TRAIN: probed after answer_timeout, accepted then; its duplicate is ACKed
    t2 = host.submit(replace(train, round=5))
    host.poll()
    assert len(host_frames(host)) == 1  # lost
    clock.t += 2.5
    host.poll()
    evs = _c_device(host, rx, tx, back)
    assert [(e.status, e.reply[0]) for e in evs] == [("FLT_OK", 0)]
    clock.t += 2.5
    host.poll()
    evs = _c_device(host, rx, tx, back)
    assert [(e.status, e.reply[:2]) for e in evs] == [("FLT_ERR_DUPLICATE", (5, 1))]
    host.poll()
    assert not host.pending(t2) and host.stats.retransmissions == 2
    # a lost GLOBAL chunk: the TRAIN after it is NACKed ORDER, raised to the caller
    host.submit(m.Global.full(5, np.zeros(100, np.float32)))
    host.submit(replace(train, round=6))
    host.poll()
    frames = iter(range(3))
    evs = _c_device(host, rx, tx, back, drop=lambda f: next(frames) == 0)
    assert [e.status for e in evs] == ["FLT_ERR_ORDER", "FLT_ERR_ORDER"]
    with pytest.raises(NackError) as info:
        for _ in range(3):
            host.poll()
    assert info.value.status == "FLT_ERR_ORDER" and host.idle


def test_unanswered_train_gives_up_with_clear_error():
    clock = Clock()
    sent = []
    s = Session(key=KEY, device_id=DEV, send=sent.append, receive=lambda: b"", clock=clock,
                timeout=0.1, retries=2, answer_timeout=1.0)
    s.submit(m.Train(round=1, epochs=1, batch_size=8, learning_rate=0.1, topk_count=5))
    with pytest.raises(DeliveryError, match=r"not answered after 3 tries of 1.0 s"):
        for _ in range(100):
            s.poll()
            clock.t += 0.1
    assert len(sent) == 3 and len(set(sent)) == 1
