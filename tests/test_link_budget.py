"""What the link costs: the rate-limited serial link (PacedLink), the downlink rule
(fltiny.server.downlink) and the wire byte count of the simulator (WireCount), each against
an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import protocol as op
from oracles.receiver import acked

from fltiny.bridge import messages as m
from fltiny.bridge.link import Link, PacedLink
from fltiny.native import delta as nd
from fltiny.native.errors import ProtocolError
from fltiny.native.proto import WireCount, decode_wire
from fltiny.server.downlink import GLOBAL_DELTA_BLOCK, Held, global_message


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


class Pipe(Link):
    """An inner link: records what is sent (with the time), returns what is queued."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.out: list[tuple[float, bytes]] = []
        self.incoming: list[bytes] = []

    def _send(self, data: bytes) -> None:
        self.out.append((self.clock(), data))

    def _receive(self) -> bytes:
        return self.incoming.pop(0) if self.incoming else b""

    def close(self) -> None:
        pass


def test_paced_link_sends_no_faster_than_the_baud_rate():
    clock = FakeClock()
    pipe = Pipe(clock)
    link = PacedLink(pipe, 9600, clock=clock, sleep=clock.sleep)
    t0 = clock()
    link.send(bytes(100))
    # 100 bytes of 10 bits at 9600 baud: the line is busy 104.2 ms, the call returns then
    assert clock() - t0 == pytest.approx(100 * 10 / 9600)
    sent = 0
    for t, part in pipe.out:  # slice i leaves only once the bytes before it are on the line
        assert t - t0 >= sent * 10 / 9600 - 1e-9
        sent += len(part)
    assert sent == 100 and link.sent == 100


def test_paced_link_delivers_received_bytes_at_line_speed():
    clock = FakeClock()
    pipe = Pipe(clock)
    link = PacedLink(pipe, 115200, clock=clock, sleep=clock.sleep)
    pipe.incoming.append(bytes(range(1, 51)))  # the board wrote 50 bytes at once
    t0 = clock()
    got = b""
    while len(got) < 50:
        got += link.receive()
    assert got == bytes(range(1, 51)) and link.received == 50
    assert clock() - t0 == pytest.approx(50 * 10 / 115200, rel=0.02)
    with pytest.raises(ValueError):
        PacedLink(pipe, 0)


def test_downlink_rule_full_delta_none():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=300).astype(np.float32)
    msg, held = global_message(w0, 1, None)  # unknown state: FULL
    assert msg.kind == m.GlobalKind.FULL and np.array_equal(held.params, w0)
    assert global_message(w0, 1, held)[0] is None  # holds it: nothing to send
    w1 = w0 + rng.normal(0, 0.01, 300).astype(np.float32)
    msg, held1 = global_message(w1, 2, held, topk=0.2)
    assert msg.kind == m.GlobalKind.DELTA and msg.base_version == 1
    # what the device will hold is what the C applies to what it held (flt_delta_apply)
    d = nd.PayloadDecoder(300).decode(msg.body)
    assert d.k == 60 and d.block_size == GLOBAL_DELTA_BLOCK
    assert np.array_equal(held1.params, nd.apply(d, w0))
    # server-side error feedback: what was not sent is still in the difference next round
    msg2, held2 = global_message(w1, 3, held1, topk=0.2)
    assert np.abs(w1 - held2.params).sum() < np.abs(w1 - held1.params).sum()
    # two versions behind, or a device that cannot apply deltas: FULL
    assert global_message(w1, 3, Held(1, w0))[0].kind == m.GlobalKind.FULL
    assert global_message(w1, 2, held, can_delta=False)[0].kind == m.GlobalKind.FULL


def test_wire_count_is_the_frames_and_acks_of_the_oracle():
    key = bytes(range(32))
    w = WireCount(key, device_id=7, chunk=64)
    train = m.Train(round=3, epochs=2, batch_size=8, learning_rate=0.01, topk_fraction=0.1)
    glob = m.Global.full(3, np.arange(40, dtype=np.float32))  # 172 bytes: 3 chunks of 64
    big = m.Global.full(4, np.arange(80, dtype=np.float32))  # 332 bytes: 6 chunks of 64
    added = sum(w.send(msg, from_host=True) for msg in (glob, train, big))
    # independently: the oracle's frames for each chunk, one ACK per data frame the device
    # acknowledges (docs/protocol.md "Answered messages": none for the TRAIN and a GLOBAL of
    # at most 4 chunks)
    expect_down = expect_up = 0
    seq = 1
    for msg in (glob, train, big):
        raw = msg.encode()
        n = max(1, -(-len(raw) // 64))
        for i in range(n):
            part = raw[i * 64:(i + 1) * 64]
            frame = op.encode_frame(op.Header(int(msg.TYPE), 7, seq, i, n, len(part),
                                              op.FLAG_FROM_HOST), part, key, max_chunk=64)
            assert decode_wire(frame, key).payload == part  # the C reads the oracle's frame
            expect_down += len(frame)
            if not acked(int(msg.TYPE), n, op.FLAG_FROM_HOST):
                seq += 1
                continue
            ack = m.Ack(seq).encode()
            expect_up += len(op.encode_frame(op.Header(int(m.MsgType.ACK), 7, 0,
                                                       payload_len=len(ack)), ack, key))
            seq += 1
    assert (w.down, w.up) == (expect_down, expect_up)
    assert added == expect_down + expect_up and w.seq[True] == seq


def test_wire_count_from_the_device_and_past_one_byte_varints():
    """The device's side (its DELTA, chunked, ACKed by the host) and sequence numbers whose
    varints grow (127 -> 128 and on): every byte as the oracle frames it."""
    key = bytes(range(32, 64))
    w = WireCount(key, device_id=300, chunk=32)
    rng = np.random.default_rng(3)
    sparse, _ = nd.compress(rng.normal(size=600).astype(np.float32), np.zeros(600, np.float32),
                            None, k=60)
    delta = m.Delta(5, 4, 120, 0.25, nd.encode_payload(sparse), 30, 0.875)
    up = down = 0
    seq = 1
    for _ in range(40):  # DELTAs of several chunks each: device seqs past 127
        before = (w.up, w.down)
        w.send(delta, from_host=False)
        raw = delta.encode()
        n = max(1, -(-len(raw) // 32))
        for i in range(n):
            part = raw[i * 32:(i + 1) * 32]
            up += len(op.encode_frame(op.Header(int(delta.TYPE), 300, seq, i, n, len(part), 0),
                                      part, key, max_chunk=32))
            ack = m.Ack(seq).encode()
            down += len(op.encode_frame(op.Header(int(m.MsgType.ACK), 300, 0,
                                                  payload_len=len(ack), flags=op.FLAG_FROM_HOST),
                                        ack, key))
            seq += 1
        assert (w.up, w.down) == (up, down) and (w.up, w.down) != before
    assert seq > 128 and w.seq == {True: 1, False: seq}


def test_wire_count_refuses_a_control_message_in_one_line():
    w = WireCount(bytes(32), device_id=1)
    with pytest.raises(ProtocolError, match="counting a ACK message"):
        w.send(m.Ack(3), from_host=False)


def test_wire_figures_average_the_steady_rounds_per_device():
    from fltiny.report.wire import WireFigures

    rows = [{"round": 0},
            {"round": 1, "participants": 4, "rejected": 0, "bytes_up": 2000, "bytes_down": 18000},
            {"round": 2, "participants": 3, "rejected": 1, "bytes_up": 1000, "bytes_down": 2000},
            {"round": 3, "participants": 4, "rejected": 0, "bytes_up": 1400, "bytes_down": 2000}]
    w = WireFigures.of(rows, 1000)
    assert (w.up, w.down, w.first_up, w.first_down) == (300, 500, 500, 4500)
    assert w.up_ratio == pytest.approx(4000 / 300) and w.up_bits_per_param == pytest.approx(2.4)
    assert "13.3x below the 4,000-B dense float32 delta" in w.line()
    assert WireFigures.of(rows[:1], 1000) is None


def test_firmware_cache_key_follows_the_firmware_sources(tmp_path):
    """An ELF built from older firmware (another protocol version) must never be reused."""
    from fltiny.boards import get_board
    from fltiny.run.runner import firmware_key

    board = get_board("qemu-m4f")
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "qemu-m4f.toml").write_text("name = 'qemu-m4f'\n")
    src = tmp_path / "firmware" / "runtime" / "proto" / "frame.c"
    src.parent.mkdir(parents=True)
    src.write_text("/* v1 */\n")
    k1 = firmware_key(board, "bundle", tmp_path)
    assert firmware_key(board, "bundle", tmp_path) == k1
    src.write_text("/* v2 */\n")
    k2 = firmware_key(board, "bundle", tmp_path)
    assert k2 != k1 and firmware_key(board, "other bundle", tmp_path) != k2
    assert firmware_key(get_board("qemu-rv32"), "bundle", tmp_path) != k2  # another board


def test_default_export_is_not_reused_across_a_new_default_split(tmp_path):
    """build/<model> from before the float-tail default (a head-only split) is exported again
    instead of silently training 374 parameters where the default trains 1,030."""
    import json

    from fltiny.train import SIDECAR, TrainConfig
    from fltiny.workflow import _reusable

    cfg = TrainConfig()
    (tmp_path / "model.keras").write_bytes(b"x")
    (tmp_path / SIDECAR).write_text(json.dumps({
        "model_name": "har-tiny", "dataset": "hapt",
        "config": {"epochs": cfg.epochs, "seed": cfg.seed}}))
    dense = {"n_in": 16, "n_out": 6, "activation": "none"}
    conv = {"n_in": 512, "n_out": 512, "activation": "relu", "kind": "conv1d"}
    (tmp_path / "manifest.json").write_text(json.dumps({"head": {"layers": [dense]}}))
    assert not _reusable(tmp_path, "har-tiny", "hapt", cfg)  # har-tiny's default: conv + head
    (tmp_path / "manifest.json").write_text(json.dumps({"head": {"layers": [conv, dense]}}))
    assert _reusable(tmp_path, "har-tiny", "hapt", cfg)
    assert not _reusable(tmp_path, "har-tiny", "hapt", TrainConfig(epochs=cfg.epochs + 1))
