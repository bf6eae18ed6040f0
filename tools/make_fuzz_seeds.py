"""Writes the libFuzzer seed corpus firmware/fuzz/seeds/<target>/ from the real encoders.

    .venv/bin/python tools/make_fuzz_seeds.py

Every seed is made by the C runtime through fltiny.native (messages, frames, delta payloads,
COBS) or by the host's own writers (fltiny.devices.data: data blobs and recordings; the
checkpoint record from its layout), then laid out in the input format of its harness (the
comment at the top of firmware/fuzz/<target>.c).
A few valid inputs per target, deterministic (fixed seeds, no clock): tests/test_fuzz.py checks
the checked-in files are exactly what this script writes.
"""

from __future__ import annotations

import ctypes as C
import shutil
import struct
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.devices.data import DataBlob, Recording  # noqa: E402
from fltiny.native import delta as nd  # noqa: E402
from fltiny.native import lib as L  # noqa: E402
from fltiny.native import messages as m  # noqa: E402
from fltiny.native import proto  # noqa: E402

SEED_DIR = REPO / "firmware" / "fuzz" / "seeds"
KEY = bytes(range(1, 33))  # FUZZ_KEY (firmware/fuzz/fuzz.h)
DEV = 0x42  # FUZZ_DEVICE_ID
HASH = bytes(range(8))

# message types in the order of the harnesses' `types` tables (link_rx.c, outbox.c)
DATA_TYPES = [m.MsgType.HELLO, m.MsgType.GLOBAL, m.MsgType.TRAIN, m.MsgType.DELTA,
              m.MsgType.STATUS, m.MsgType.LOG, m.MsgType.ERROR]


def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def cobs_decode(wire: bytes) -> bytes:
    """flt_cobs_decode of a wire frame (its trailing delimiter removed)."""
    data = wire[:-1] if wire.endswith(b"\0") else wire
    out = C.create_string_buffer(max(len(data), 1))
    n = C.c_size_t(0)
    assert L.rt().flt_cobs_decode(data, len(data), out, len(out), C.byref(n)) == 0
    return out.raw[: n.value]


def payload(delta: nd.SparseDelta, fmt: int) -> bytes:
    """flt_payload_encode in index format ``fmt`` (0 varint, 1 bitmap, 2 Rice, 3 Rice values)."""
    cap = 64 + 4 * delta.n + 8 * delta.k
    out = (C.c_uint8 * cap)()
    n = C.c_size_t(0)
    assert L.rt().flt_payload_encode(C.byref(delta.c()), fmt, out, cap, C.byref(n)) == 0
    return bytes(out[: n.value])


def deltas() -> list[tuple[str, nd.SparseDelta]]:
    rng = np.random.default_rng(19)
    local = rng.standard_normal(200).astype(np.float32)
    zero = np.zeros(200, np.float32)
    tensor, _ = nd.compress(local, zero, None, k=12)
    block, _ = nd.compress(local, zero, None, k=40, mode=nd.QuantMode.BLOCK, block_size=8)
    four_bit, _ = nd.compress(local[:30], zero[:30], None, k=30, bits=4)
    return [("k12_tensor", tensor), ("k40_block8", block), ("n30_dense_4bit", four_bit)]


def messages() -> dict[str, m.Message]:
    d = dict(deltas())
    return {
        "hello": m.Hello("qemu-m4f", 0x07, 3, HASH, 5, 374, 40960),
        "train_count": m.Train(round=3, epochs=2, batch_size=16, learning_rate=0.05, momentum=0.9,
                               prox_mu=0.01, clip=1.0, topk_count=12, seed=7, flags=0x401),
        "train_fraction": m.Train(round=1, epochs=1, batch_size=8, learning_rate=0.1,
                                  topk_fraction=0.25, flags=0x2),
        "train_ldp": m.Train(round=2, epochs=1, batch_size=8, learning_rate=0.1,
                             topk_fraction=0.1, flags=0x40, ldp_clip=0.05, ldp_noise=1.5),
        "global_full": m.Global.full(4, np.linspace(-1, 1, 24, dtype=np.float32)),
        "global_delta": m.Global.delta(5, 4, nd.encode_payload(d["k40_block8"])),
        "delta": m.Delta(3, 4, 120, 0.42, nd.encode_payload(d["k12_tensor"]), 36, 0.875),
        "status": m.Status("blob count=120 test=36"),
        "log": m.Log("round 3\tdone\n"),
        "error": m.Error(11, "TRAIN before the first window"),
        "ack": m.Ack(9),
        "ack_duplicate": m.Ack(9, m.ACK_DUPLICATE),
        "nack": m.Nack(12, 15),
    }


def wire_frame(msg: m.Message, seq: int, *, from_host: bool) -> bytes:
    body = msg.encode()
    h = proto.Header(msg.TYPE, DEV, 0 if m.is_control(msg.TYPE) else seq,
                     payload_len=len(body), flags=proto.FLAG_FROM_HOST if from_host else 0)
    return proto.encode_frame(h, body, KEY)


# ---- per target ------------------------------------------------------------------------


def seeds_cobs() -> Iterable[tuple[str, bytes]]:
    msgs = messages()
    yield "frame_train", wire_frame(msgs["train_count"], 3, from_host=True)[:-1]
    yield "frame_global", wire_frame(msgs["global_full"], 1, from_host=True)[:-1]
    yield "zeros_and_254_run", b"\x01\x01" + bytes([0xFF]) + bytes(range(1, 255)) + b"\x01"


def seeds_frame() -> Iterable[tuple[str, bytes]]:
    msgs = messages()
    for name, seq, host in (("train_count", 3, True), ("delta", 70000, False), ("ack", 0, False)):
        raw = cobs_decode(wire_frame(msgs[name], seq, from_host=host))
        yield f"{name}_untagged", b"\x00" + raw[:-8]
        yield f"{name}_tagged", b"\x01" + raw
    chunk = proto.encode_frame(proto.Header(m.MsgType.GLOBAL, DEV, 9, 2, 3, 5,
                                            proto.FLAG_FROM_HOST), b"\x01\x02\x03\x04\x05", KEY)
    yield "chunk_2_of_3_untagged", b"\x00" + cobs_decode(chunk)[:-8]


def _message_op(msg: m.Message, chunk: int, drop: int = 0xFFFF, twice: int = 0xFFFF) -> bytes:
    body = msg.encode()
    return (bytes([1, DATA_TYPES.index(msg.TYPE)]) + u16(len(body)) + bytes([chunk - 1]) + body
            + u16(drop) + u16(twice))


def _frame_op(type_: int, payload: bytes, *, ctl: int = 0, seq: bytes = b"", index: int = 0,
              count: int = 0, corrupt: int = 0, at: int = 0) -> bytes:
    return (bytes([0, type_ - 1, ctl]) + seq + bytes([index, count]) + u16(len(payload)) + payload
            + bytes([corrupt]) + u16(at))


def seeds_link_rx() -> Iterable[tuple[str, bytes]]:
    msgs = messages()
    device_full = bytes([0b0110, 0])  # device side, 4096-byte messages, full frame buffer
    yield "train_then_status", (device_full + _message_op(msgs["train_count"], 256)
                                + _message_op(msgs["status"], 256))
    yield "global_in_small_chunks", device_full + _message_op(msgs["global_full"], 20, twice=1)
    yield "global_chunk_dropped", device_full + _message_op(msgs["global_full"], 16, drop=2)
    yield "replay_and_raw_frame", (device_full + _message_op(msgs["train_fraction"], 256)
                                   + bytes([3]) + u32(1)
                                   + _message_op(msgs["train_fraction"], 256)
                                   + bytes([2, 0]) + b"\x00"
                                   + (lambda w: bytes([2, len(w)]) + w)(
                                       wire_frame(msgs["log"], 50, from_host=True)))
    # answered messages (link.h): a 3-chunk GLOBAL burst and its TRAIN (no ACKs; the TRAIN
    # sent twice: its duplicate is ACKed), and the same with a GLOBAL chunk lost (the TRAIN
    # after it is NACKed ORDER)
    yield "global_burst_then_train", (device_full + _message_op(msgs["global_full"], 40)
                                      + _message_op(msgs["train_count"], 256, twice=0))
    yield "train_after_lost_chunk", (device_full + _message_op(msgs["global_full"], 40, drop=2)
                                     + _message_op(msgs["train_count"], 256))
    host_small = bytes([0b0011, 9])  # host side, 300-byte messages
    yield "host_hello_delta", (host_small + _message_op(msgs["hello"], 256)
                               + _message_op(msgs["delta"], 64))
    yield "control_frames", (host_small + _frame_op(m.MsgType.ACK, msgs["ack"].encode(),
                                                    ctl=2 << 3, seq=u32(0))
                             + _frame_op(m.MsgType.NACK, msgs["nack"].encode(), ctl=2 << 3,
                                         seq=u32(0))
                             + _frame_op(m.MsgType.HELLO, msgs["hello"].encode(), corrupt=0x40,
                                         at=7))
    yield "chunked_frames", (device_full + _frame_op(m.MsgType.STATUS, b"two ", ctl=4, count=2)
                             + _frame_op(m.MsgType.STATUS, b"parts", ctl=4, index=1, count=2))


def _queue_op(slot: int, msg: m.Message) -> bytes:
    body = msg.encode()
    return bytes([0, slot, DATA_TYPES.index(msg.TYPE)]) + u16(len(body)) + b"\x00" + body


def _service(dt: int = 60, fate: int = 0) -> bytes:
    return bytes([1, dt, fate]) + u16(0)


def _answers(*fates: int) -> bytes:
    return bytes([2, *fates])


def seeds_outbox() -> Iterable[tuple[str, bytes]]:
    msgs = messages()
    head = bytes([0, 1, 2, 63]) + u32(1000)  # device side, 2 slots, 2 retries, 64-byte chunks
    delta = msgs["delta"]
    chunks = -(-len(delta.encode()) // 64)
    yield "delta_delivered", (head + _queue_op(0, delta)
                              + (_service() + _answers(0)) * chunks + _service())
    yield "lost_frame_and_late_ack", (head + _queue_op(0, msgs["hello"]) + _service(fate=1)
                                      + _service() + _service(dt=60, fate=2) + _answers(2, 0)
                                      + bytes([4]) + _service())
    yield "two_slots_nack", (head + _queue_op(1, msgs["status"])
                             + bytes([0, 0, DATA_TYPES.index(m.MsgType.TRAIN)]) + u16(5) + b"\x00"
                             + b"\x01\x02\x03\x04\x05" + _service() + _answers(0)
                             + _service() + _answers(0) + _service())
    yield "give_up_then_wrap", (bytes([1, 0, 0, 255]) + u32(0xFFFFFF00) + _queue_op(0, msgs["log"])
                                + _service(fate=1) + _service(dt=255, fate=1)
                                + _service(dt=255) + bytes([5]) + u32(0x200) + _service())
    # a DELTA cancelled after its first chunk went out, then another queued in its slot: the
    # first one's late ACK must not complete the second (flt_device.c drops a DELTA this way)
    # host side: a GLOBAL burst (3 chunks of 40, no ACK), its TRAIN probed once, then answered
    host = bytes([1, 1, 2, 39]) + u32(1000)
    yield "host_burst_then_answered", (host + _queue_op(0, msgs["global_full"])
                                       + _queue_op(1, msgs["train_count"]) + _service() * 4
                                       + _service(dt=255) + _service(dt=255) + _answers(0)
                                       + bytes([7, 1]) + _service())
    yield "cancel_mid_message", (head + _queue_op(0, delta) + _service() + bytes([6, 0])
                                 + _queue_op(0, msgs["status"]) + _answers(0) + _service()
                                 + _answers(0) + _service())


def seeds_messages() -> dict[str, list[tuple[str, bytes]]]:
    msgs = messages()
    return {
        "msg_hello": [("hello", msgs["hello"].encode())],
        "msg_global": [("full", msgs["global_full"].encode()),
                       ("delta", msgs["global_delta"].encode())],
        "msg_train": [("count", msgs["train_count"].encode()),
                      ("fraction", msgs["train_fraction"].encode()),
                      ("local_dp", msgs["train_ldp"].encode())],
        "msg_delta": [("delta", msgs["delta"].encode())],
        "msg_ack": [("ack", b"\x00" + msgs["ack"].encode()),
                    ("ack_duplicate", b"\x00" + msgs["ack_duplicate"].encode()),
                    ("nack", b"\x01" + msgs["nack"].encode())],
        "msg_text": [("status", b"\x00" + msgs["status"].encode()),
                     ("log", b"\x01" + msgs["log"].encode()),
                     ("error", b"\x02" + msgs["error"].encode())],
    }


def seeds_payload() -> Iterable[tuple[str, bytes]]:
    for name, d in deltas():
        for fmt, fname in enumerate(("varint", "bitmap", "rice", "rice_values")):
            yield f"{name}_{fname}", b"\x01" + payload(d, fmt)
    empty = nd.SparseDelta(10, nd.QuantMode.TENSOR, 0, np.zeros(0, np.uint32),
                           np.zeros(0, np.int8), np.zeros(0, np.float32))
    yield "k0", b"\x00" + payload(empty, 0)


def _blob(kind: int) -> bytes:
    rng = np.random.default_rng(3 + kind)
    windows = rng.integers(-128, 128, (6, 5, 3), dtype=np.int8)
    if kind == 0:
        return DataBlob(7, windows, np.arange(6, dtype=np.int32) % 3, None, 0.05, -3, HASH,
                        n_test=2).encode()
    targets = rng.standard_normal((6, 2)).astype(np.float32)
    return DataBlob(8, windows, None, targets, 0.1, 0, HASH, n_test=1).encode()


def seeds_data_blob() -> Iterable[tuple[str, bytes]]:
    yield "labels", b"\x01" + _blob(0)
    yield "targets", b"\x01" + _blob(1)
    yield "labels_crc_fixed", b"\x00" + _blob(0)


def seeds_recording() -> Iterable[tuple[str, bytes]]:
    rng = np.random.default_rng(5)
    samples = rng.integers(-128, 128, (9, 3), dtype=np.int8)
    labels = np.array([0, 0, 0, -1, 1, 1, 1, 2, 2], np.int32)
    yield "labels", b"\x01" + Recording(7, samples, labels, None, 0.05, -3, HASH, 50).encode()
    targets = rng.standard_normal((9, 3)).astype(np.float32)
    yield "targets", b"\x01" + Recording(8, samples, None, targets, 0.1, 0, HASH).encode()
    yield "labels_crc_fixed", b"\x00" + Recording(7, samples[:4], labels[:4], None, 0.05, -3,
                                                  HASH).encode()


def seeds_window_store() -> Iterable[tuple[str, bytes]]:
    # window 4 x 2, stride 2, capacity 3, labels, 3 classes: runs of labels with a change
    steps = b"".join(bytes([1, i, 0x80 | i, lab]) for i, lab in
                     enumerate([0, 0, 0, 0, 0, 1, 1, 1, 1, 255, 2, 2, 2, 2, 2, 2]))
    yield "labels", bytes([3, 1, 1, 2, 0, 0, 3]) + steps + b"\x07"
    # window 3 x 1, stride 3, capacity 2, two targets; an unlabelled step and a NaN target
    t = [struct.pack("<2f", 0.5 * i, -1.0 * i) for i in range(9)]
    t[4] = struct.pack("<f", 1.0) + u32(0x7FC00000)
    steps = b"".join(bytes([1, i, 0x80 if i == 7 else 0]) + t[i] for i in range(9))
    yield "targets", bytes([2, 0, 2, 1, 1, 1, 0]) + steps + b"\x07"


def _checkpoint(version: int, round_: int, params: np.ndarray, residual: np.ndarray) -> bytes:
    """The record of firmware/app/flt_checkpoint.h, laid out from its header comment (the host
    writes none; the harness checks the C encoder gives the same bytes back)."""
    body = params.astype("<f4").tobytes() + residual.astype("<f4").tobytes()
    return (u32(0x43544C46) + u32(version) + u32(round_) + u32(len(params))
            + u32(zlib.crc32(body)) + body)


def seeds_checkpoint() -> Iterable[tuple[str, bytes]]:
    rng = np.random.default_rng(11)
    for n, version, round_ in ((3, 1, 0), (17, 9, 8), (64, 2, 0xFFFFFFFF)):
        rec = _checkpoint(version, round_, rng.standard_normal(n).astype(np.float32),
                          (1e-3 * rng.standard_normal(n)).astype(np.float32))
        yield f"n{n}", bytes([0x80 | (n - 1)]) + rec  # as it is (bit 7: no CRC fix-up)
    yield "n5_crc_fixed", bytes([4]) + _checkpoint(1, 3, np.ones(5, np.float32),
                                                   np.zeros(5, np.float32))


def _secagg_round() -> dict[str, bytes]:
    """One message of each kind from a real 3-device round (fixed device secrets)."""
    from fltiny.native import secagg as sa
    from fltiny.privacy.secagg import SecAggRound

    devs = {i: sa.SecAggDevice(i, bytes([i]) * 32) for i in (5, 6, 9)}
    srv = SecAggRound(round=1, epoch=1, n_params=20, k=4, clip=1.0, index_seed=3)
    out = {"begin": srv.begin_message()}
    for i, d in devs.items():
        out["advertise"] = adv = d.begin(out["begin"])
        srv.advertise(i, adv)
    out["cohort"] = srv.cohort()
    for i, d in devs.items():
        out["shares"] = sh = d.cohort(out["cohort"])
        srv.take_shares(i, sh)
    for i, d in devs.items():
        d.receive(srv.relay(i))
    for i, d in devs.items():
        if i != 9:
            out["masked"] = y = d.masked(np.arange(4, dtype=np.uint32))
            srv.take_masked(i, y)
    out["unmask"] = srv.unmask()
    out["reveal"] = devs[5].unmask(out["unmask"])
    return out


SECAGG_KINDS = ("begin", "advertise", "cohort", "shares", "masked", "unmask", "reveal")


def seeds_secagg_msg() -> Iterable[tuple[str, bytes]]:
    msgs = _secagg_round()
    for i, kind in enumerate(SECAGG_KINDS):  # byte 0: the decoder (firmware/fuzz/secagg_msg.c)
        yield kind, bytes([i]) + msgs[kind]


def seeds_secagg_client() -> Iterable[tuple[str, bytes]]:
    """COHORT of 3 (this device first, t = 1, K = 4), a sealed SHARES entry from 0x43, MASKED,
    UNMASK naming 0x43 dropped: a whole round of firmware/fuzz/secagg_client.c's ops."""
    head = (u32(1) + u32(1) + u32(3) + u32(4) + struct.pack("<f", 100.0) + u32(100) + u16(1)
            + u16(3) + bytes([16, 0, 0, 0]))
    members = b"".join(u32(DEV + i) + bytes([9 + i]) * 64 for i in range(3))
    cohort = bytes([1, 1]) + head + members + bytes([0])
    entry = u32(DEV + 1) + bytes(80)
    shares_msg = u32(1) + u16(1) + u16(0) + entry
    shares = bytes([2]) + u16(len(shares_msg)) + shares_msg + bytes([1])
    masked = bytes([3, 4]) + b"".join(u32(v) for v in (1, 2, 3, 0xFFFFFFFF))
    unmask_msg = u32(1) + u16(1) + u16(1) + u32(DEV) + u32(DEV + 1)
    unmask = bytes([4]) + u16(len(unmask_msg)) + unmask_msg
    yield "round", cohort + shares + masked + unmask
    yield "cohort_only", cohort
    yield "replay", bytes([0, 1, 1]) + bytes([0, 0, 5])


def seeds() -> dict[str, dict[str, bytes]]:
    """target -> seed name -> bytes."""
    out: dict[str, dict[str, bytes]] = {
        "cobs": dict(seeds_cobs()), "frame": dict(seeds_frame()),
        "link_rx": dict(seeds_link_rx()), "outbox": dict(seeds_outbox()),
        "payload": dict(seeds_payload()), "data_blob": dict(seeds_data_blob()),
        "recording": dict(seeds_recording()), "window_store": dict(seeds_window_store()),
        "checkpoint": dict(seeds_checkpoint()),
        "secagg_msg": dict(seeds_secagg_msg()), "secagg_client": dict(seeds_secagg_client()),
    }
    out.update({t: dict(v) for t, v in seeds_messages().items()})
    return out


def write(dest: Path = SEED_DIR) -> int:
    """Replaces dest/<target>/ with the seeds; returns the bytes written."""
    total = 0
    for target, files in sorted(seeds().items()):
        d = dest / target
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
            total += len(data)
    return total


if __name__ == "__main__":
    n = write()
    print(f"wrote {n:,} bytes of seeds to {SEED_DIR.relative_to(REPO)}")
