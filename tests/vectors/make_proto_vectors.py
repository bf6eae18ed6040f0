"""Write the shared C/Python vectors of the wire protocol (docs/protocol.md).

    .venv/bin/python tests/vectors/make_proto_vectors.py

Deterministic. Writes tests/vectors/proto/frames.json: one entry per message case with the
message fields (bytes as hex), the sender (device id, first sequence number, host or device),
the 32-byte key (hex), the expected payload (hex) and the expected wire frames, one per chunk of
FLT_PROTO_MAX_CHUNK = 256 bytes (hex, COBS-encoded, with the 0x00 delimiter). The expected bytes
come from the Python oracle (tests/oracles); the tests check that the C runtime produces the same
bytes and that each side decodes the other's frames.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the oracles
from oracles import messages as m  # noqa: E402
from oracles import protocol as p  # noqa: E402

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "proto"


def _key(label: str) -> bytes:
    return hashlib.sha256(b"fltiny test key " + label.encode()).digest()


def _delta_payload(name: str) -> bytes:
    manifest = json.loads((ROOT / "delta" / "manifest.json").read_text())
    case = next(c for c in manifest["cases"] if c["name"] == name)
    return bytes.fromhex(case["payload_hex"])


def _fields(msg: m.Message) -> dict:
    out = {}
    for k, v in vars(msg).items():
        out[k] = v.hex() if isinstance(v, bytes) else v
    return out


def cases() -> list[dict]:
    rng = np.random.default_rng(7)
    dp_small = _delta_payload("n100_ppm100000")
    dp_big = _delta_payload("n4096_ppm2000")
    params_small = rng.standard_normal(10).astype(np.float32)
    params_20k = (rng.standard_normal(5000) * 0.1).astype(np.float32)  # 20,000 bytes
    out = []

    def add(name: str, msg: m.Message, *, device_id: int, first_seq: int, on_host: bool,
            note: str = "") -> None:
        out.append(dict(name=name, note=note, type=int(msg.TYPE), on_host=on_host,
                        device_id=device_id, first_seq=first_seq, key_label=name, msg=msg))

    add("hello", m.Hello("nucleo-l476rg", m.CAP_TRAIN_HEAD | m.CAP_GLOBAL_DELTA, 0x00010203,
                         bytes.fromhex("0123456789abcdef"), 3, 1290, 41234),
        device_id=0x11223344, first_seq=1, on_host=False)
    add("hello_name16", m.Hello("ABCDEFGHIJKLMNOP", 0xFFFFFFFF, 0, bytes(8), 0, 0, 0),
        device_id=1, first_seq=0xFFFFFFF0, on_host=False, note="16-char name, large seq")
    add("hello_reannounce", m.Hello("qemu-m4f", m.CAP_TRAIN_HEAD, 7, bytes(range(8)), 12, 1030,
                                    9000, host_seq=0xDEADBEEF),
        device_id=5, first_seq=77, on_host=False, note="a running board's HELLO (host_seq)")
    add("global_full", m.Global.full(4, params_small), device_id=0x0000BEEF, first_seq=7,
        on_host=True)
    add("global_full_20k", m.Global.full(9, params_20k), device_id=0xCAFE0001, first_seq=100,
        on_host=True, note="20,012-byte message in 79 chunks of 256 bytes")
    add("global_delta", m.Global.delta(5, 4, dp_small), device_id=0x0000BEEF, first_seq=20,
        on_host=True)
    add("train_count", m.Train(round=3, epochs=2, batch_size=16, learning_rate=0.05,
                               momentum=0.9, prox_mu=0.01, clip=5.0, topk_count=64, seed=1234,
                               flags=m.TRAIN_DRIFT | m.TRAIN_PERSONAL),
        device_id=0x42, first_seq=2, on_host=True)
    add("train_fraction", m.Train(round=0xFFFFFFFF, epochs=255, batch_size=65535,
                                  learning_rate=1e-3, topk_fraction=0.02, seed=0xDEADBEEF),
        device_id=0x42, first_seq=3, on_host=True)
    add("delta", m.Delta(round=3, base_version=4, examples=117, loss=0.4375, body=dp_small,
                         personal_n=96, personal_metric=0.9375),
        device_id=0x42, first_seq=5, on_host=False)
    add("delta_big", m.Delta(round=8, base_version=12, examples=1, loss=0.0, body=dp_big),
        device_id=0x42, first_seq=6, on_host=False, note="sparse delta payload of a 4096-parameter head")
    add("status", m.Status("training round 3: epoch 1/2"), device_id=0x42, first_seq=9,
        on_host=False)
    add("status_empty", m.Status(""), device_id=0x42, first_seq=10, on_host=False)
    add("log_max", m.Log(("log line\twith tab\n" * 8)[:128]), device_id=0x42, first_seq=11,
        on_host=False, note="128-byte text (the maximum)")
    add("error", m.Error(8, "arena too small"), device_id=0x42, first_seq=12, on_host=False)
    add("disable", m.Disable(True), device_id=0x42, first_seq=13, on_host=True)
    add("enable", m.Disable(False), device_id=0x0000BEEF, first_seq=0x4000, on_host=True,
        note="ENABLE is a DISABLE with disabled 0")
    zero_free = rng.integers(1, 256, size=(600, 4), dtype=np.uint8)
    zero_free[:, 3] = rng.integers(0x01, 0x7F, size=600, dtype=np.uint8)  # finite, no zeros
    add("cobs_runs", m.Global.full(1, zero_free.reshape(-1).view("<f4")),
        device_id=0x01010101, first_seq=0x01010101, on_host=True,
        note="long zero-free runs (COBS 254/255 boundaries)")
    add("delta_masked", m.Delta(round=4, base_version=5, examples=60, loss=0.75, body=b"",
                                personal_n=20, personal_metric=0.85),
        device_id=0x42, first_seq=14, on_host=False,
        note="a masked round's DELTA (TRAIN SECAGG): no body, the update travels in SECAGG")
    add("secagg_begin", m.Secagg(1, bytes.fromhex("0100000004000000")), device_id=0x42,
        first_seq=15, on_host=True, note="SECAGG kind 1 BEGIN: epoch 1, round 4")
    add("secagg_shares", m.Secagg(4, bytes(range(256)) + bytes(range(100))), device_id=0x42,
        first_seq=16, on_host=False,
        note="SECAGG kind 4 in two chunks (the link checks the kind; secagg/msg.h the body)")
    return out


def frames_of(case: dict) -> tuple[bytes, list[bytes]]:
    payload = case["msg"].encode()
    count = p.chunk_count(len(payload))
    frames = []
    for i in range(count):
        part = payload[i * p.MAX_CHUNK : (i + 1) * p.MAX_CHUNK]
        h = p.Header(type=case["msg"].TYPE, device_id=case["device_id"],
                     seq=case["first_seq"] + i, chunk_index=i, chunk_count=count,
                     payload_len=len(part), flags=p.FLAG_FROM_HOST if case["on_host"] else 0)
        frames.append(p.encode_frame(h, part, _key(case["key_label"])))
    return payload, frames


def control_cases() -> list[dict]:
    """ACK and NACK frames (seq 0), built by the reply path of each side."""
    return [
        dict(name="ack", type=5, on_host=True, device_id=0x42, key_label="ack",
             msg=m.Ack(5, m.ACK_ACCEPTED)),
        dict(name="ack_duplicate", type=5, on_host=False, device_id=0x42, key_label="ack_dup",
             msg=m.Ack(0xFFFFFFFF, m.ACK_DUPLICATE)),
        dict(name="nack_replay", type=6, on_host=False, device_id=0x42, key_label="nack",
             msg=m.Nack(17, 13)),
    ]


def main() -> None:
    FLAG_FROM_HOST, Header, encode_frame = p.FLAG_FROM_HOST, p.Header, p.encode_frame

    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    for c in cases():
        payload, frames = frames_of(c)
        entries.append(dict(name=c["name"], note=c["note"], type=c["type"], on_host=c["on_host"],
                            device_id=c["device_id"], first_seq=c["first_seq"],
                            key_hex=_key(c["key_label"]).hex(),
                            fields=_fields(m.decode_message(c["type"], payload)),
                            payload_hex=payload.hex(), frames_hex=[f.hex() for f in frames]))
    for c in control_cases():
        payload = c["msg"].encode()
        h = Header(type=c["type"], device_id=c["device_id"], seq=0, payload_len=len(payload),
                   flags=FLAG_FROM_HOST if c["on_host"] else 0)
        frame = encode_frame(h, payload, _key(c["key_label"]))
        entries.append(dict(name=c["name"], note="control frame", type=c["type"],
                            on_host=c["on_host"], device_id=c["device_id"], first_seq=0,
                            key_hex=_key(c["key_label"]).hex(),
                            fields=_fields(m.decode_message(c["type"], payload)),
                            payload_hex=payload.hex(), frames_hex=[frame.hex()]))
    doc = {"version": 1, "max_chunk": 256, "cases": entries}
    (OUT / "frames.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(entries)} cases to {OUT / 'frames.json'}")


if __name__ == "__main__":
    main()
