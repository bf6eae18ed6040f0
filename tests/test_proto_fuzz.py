"""Fuzzing: >= 100,000 mutated inputs into the C receiver under ASan+UBSan
(tests/c/proto_fuzz.c) and >= 100,000 into the host's binding of it (fltiny.native). Only
ProtocolError may come out of the binding, and no mutated input may ever deliver a message
that was not sent; the C receiver and the Python oracle agree frame by frame."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from oracles import protocol as op
from oracles.receiver import Receiver as OracleReceiver
from test_proto_native import CRx, CTx

from fltiny.bridge import messages as m
from fltiny.native.build import build_executable
from fltiny.native.errors import ProtocolError
from fltiny.native.proto import Receiver

HERE = Path(__file__).parent
KEY = bytes(range(1, 33))
DEV = 0x42


def test_c_receiver_fuzz_under_sanitizers():
    exe = build_executable([HERE / "c" / "proto_fuzz.c"], ["proto"], "proto_fuzz")
    proc = subprocess.run([str(exe), "12345", "100000"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    words = proc.stdout.split()
    assert words[0] == "ok", proc.stdout
    stats = dict(zip(words[1::2], map(int, words[2::2]), strict=True))
    assert stats["inputs"] >= 200_000
    assert stats["messages"] > 1000 and stats["frames_rejected"] > 50_000
    assert stats["outbox_messages"] == 40 * 12  # every exchange delivered all its messages


def _bases() -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    tx = CTx(KEY, DEV, on_host=True)
    msgs = [m.Hello("fuzz", 1, 2, bytes(8), 3, 4, 5),
            m.Train(round=1, epochs=1, batch_size=4, learning_rate=0.5, topk_count=3),
            m.Status("fuzzing"),
            m.Global.full(2, np.arange(200, dtype=np.float32) / 7),
            m.Error(3, "bad")]
    originals = {}
    streams = []
    for msg in msgs:
        frames = tx.frames(msg.TYPE, msg.encode())
        originals[(int(msg.TYPE), tx.tx.next_seq - 1)] = msg.encode()
        streams.append(b"".join(frames))
    return streams, originals


def _mutate(rng: random.Random, data: bytearray, bases: list[bytes]) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        n = len(data)
        if op == 0 and n:
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            data[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:
            at = rng.randrange(n + 1)
            data[at:at] = bytes(rng.choice([0, rng.randrange(256)]) for _ in range(rng.randint(1, 8)))
        elif op == 3 and n:
            at = rng.randrange(n)
            del data[at : at + rng.randint(1, 16)]
        elif op == 4 and n:
            del data[rng.randrange(n) :]
        elif op == 5:
            other = rng.choice(bases)
            at = rng.randrange(n + 1)
            data[at:at] = other[: rng.randrange(len(other) + 1)]
        elif op == 6:
            data = bytearray(rng.randbytes(rng.randrange(300)))
        elif n:
            data[rng.randrange(n)] = 0
    return data


def test_binding_decoders_fuzz():
    rng = random.Random(777)
    bases, originals = _bases()
    payloads = list(originals.items())
    inputs = delivered = 0
    rx = Receiver(KEY, DEV, on_host=False, max_message=900)
    for it in range(50_000):
        if it % 2 == 0:
            rx = Receiver(KEY, DEV, on_host=False, max_message=900)
        data = _mutate(rng, bytearray(rng.choice(bases)), bases)
        for ev in rx.feed(bytes(data)):  # the stream receiver: never raises
            if ev.kind == "message":
                delivered += 1
                assert originals[(ev.header.type, ev.header.seq)] == ev.payload
            elif ev.kind == "rejected":
                assert isinstance(ev.error, ProtocolError)
        inputs += 1
        # the message decoders on a mutated payload (sometimes under a wrong type)
        (mtype, _), payload = rng.choice(payloads)
        mtype = rng.randrange(12) if rng.random() < 0.1 else mtype
        buf = _mutate(rng, bytearray(payload), [payload]) if rng.random() < 0.9 else payload
        try:
            msg = m.decode_message(mtype, bytes(buf))
        except ProtocolError:
            pass
        else:
            assert msg.encode() == bytes(buf)  # whatever decodes re-encodes to the same bytes
        inputs += 1
    assert inputs >= 100_000
    assert delivered > 50  # some inputs survive mutation intact and must still arrive


@pytest.mark.parametrize("n", [0, 1, 10, 11, 12, 38, 300])
def test_frame_decoders_reject_random_bytes(n):
    from fltiny.native.proto import decode_frame

    rng = random.Random(n)
    for _ in range(2000):
        data = rng.randbytes(n)
        with pytest.raises(op.ProtocolError):
            op.decode_frame(data, KEY)
        with pytest.raises(ProtocolError):
            decode_frame(data, KEY)


def test_c_and_python_receivers_agree_on_mutated_streams():
    """Differential: the same mutated byte streams give the same outcome, frame by frame."""
    rng = random.Random(99)
    bases, _ = _bases()
    for it in range(1500):
        if it % 50 == 0:
            c_rx = CRx(KEY, DEV, on_host=False, msg_cap=900)
            py_rx = OracleReceiver(KEY, DEV, on_host=False, max_message=900)
        data = bytes(_mutate(rng, bytearray(rng.choice(bases)), bases))
        if rng.random() < 0.2:
            data = rng.choice(bases)  # unmutated (also replays of earlier ones)
        c = [(e.status, e.kind, e.reply if e.reply[0] else None, e.payload)
             for e in c_rx.feed(data)]
        kinds = {"chunk": 1, "message": 2, "control": 3, "rejected": 4}
        py = [(e.error.status if e.error else "FLT_OK", kinds[e.kind],
               (int(e.reply.TYPE), e.reply.code, e.reply.acked_seq) if e.reply else None,
               e.payload) for e in py_rx.feed(data)]
        assert c == py, (it, data.hex())
