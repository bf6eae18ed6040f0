"""Fake devices (Python peers speaking the protocol) that send garbage, use a wrong key, replay
old frames, send out-of-range indices or lie about their round: each is rejected with a reason
in the run store, and only the honest device's update reaches the global model."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
from dataclasses import replace

import numpy as np
import pytest

from fltiny.bridge import messages as m
from fltiny.native import delta as nd

pytestmark = pytest.mark.slow
LOCK = threading.Lock()


class FakeDevice:
    """A TCP server the bridge connects to; behaves per `mode`."""

    def __init__(self, mode: str, device_id: int, key: bytes, hr, blob, mhash: bytes) -> None:
        from fltiny.bridge.session import Session

        self.mode, self.hr, self.blob = mode, hr, blob
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.url = f"tcp://127.0.0.1:{self.lsock.getsockname()[1]}"
        self.conn: socket.socket | None = None
        self.written: list[bytes] = []
        self.delta_frames: list[bytes] = []
        self.params = None
        self.stop = False

        def send(b: bytes) -> None:
            self.written.append(b)
            if self.conn:
                self.conn.sendall(b)

        def receive() -> bytes:
            import select

            if not self.conn:
                return b""
            r, _, _ = select.select([self.conn], [], [], 0.02)
            return self.conn.recv(4096) if r else b""

        self.s = Session(key=key, device_id=device_id, send=send, receive=receive, on_host=False,
                         timeout=0.2, retries=50)
        self.hello = m.Hello(name="fake", capabilities=m.CAP_TRAIN_HEAD, firmware_version=1,
                             model_hash=mhash, model_version=0, head_params=hr.n_params,
                             free_ram=1000)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        self.conn, _ = self.lsock.accept()
        if self.mode == "garbage":
            rng = np.random.default_rng(1)
            while not self.stop:
                self.conn.sendall(rng.integers(0, 256, 200, dtype=np.uint8).tobytes() + b"\0")
                threading.Event().wait(0.1)
            return
        self.s.submit(self.hello)
        rounds = 0
        while not self.stop:
            try:
                self.s.poll()
            except Exception:  # noqa: BLE001 - a NACK of a bad frame is the expected outcome
                pass
            while self.s.inbox:
                msg = self.s.inbox.popleft()
                if isinstance(msg, m.Global):
                    self.params = msg.params
                    self.version = msg.model_version
                elif isinstance(msg, m.Train):
                    rounds += 1
                    self._train(msg, rounds)

    def _train(self, t: m.Train, rounds: int) -> None:
        if self.mode == "replay" and rounds >= 2 and self.delta_frames:
            for f in self.delta_frames:  # the old DELTA frames, byte for byte
                self.conn.sendall(f)
            return
        with LOCK:  # the host round's C has static buffers, shared with the bridge's replay
            out = self.hr.run(self.params, self.blob, t, getattr(self, "state", None),
                              max_windows=64)
        body = out.payload
        if self.mode == "bad-index":  # one varint index gap past n: index out of range
            def leb(v: int) -> bytes:
                out = b""
                while True:
                    out += bytes([(v & 0x7F) | (0x80 if v > 0x7F else 0)])
                    v >>= 7
                    if not v:
                        return out
            # a version-3 payload header (protocol.md): version 3 | tensor | format 0, Rice 0
            body = (bytes([0x30, 0]) + leb(self.hr.n_params) + leb(1)
                    + struct.pack("<f", 0.01) + leb(self.hr.n_params + 26) + bytes([5]))
        elif self.mode == "liar":  # a valid payload that is not what this round computes
            d = nd.PayloadDecoder(len(self.params)).decode(body)
            values = d.values.copy()
            values[-1] = -values[-1] if values[-1] else 1
            body = nd.encode_payload(replace(d, values=values))
        else:
            self.state = out.state
        before = len(self.written)
        self.s.submit(m.Delta(round=t.round, base_version=self.version, examples=out.examples,
                              loss=out.mean_loss, body=body, personal_n=out.personal_n,
                              personal_metric=out.personal_metric))
        while not self.s.idle and not self.stop:
            try:
                self.s.poll()
            except Exception:  # noqa: BLE001
                break
        self.delta_frames = self.written[before:before + 1]

    def close(self) -> None:
        self.stop = True
        self.t.join(2)
        for s in (self.conn, self.lsock):
            if s:
                s.close()


def test_bad_devices_are_rejected_with_reasons(har_tiny_bundle, tmp_path):
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs
    from fltiny.devices.replay import HostRound
    from fltiny.server.config import RoundConfig, TrainParams
    from fltiny.server.rounds import run_rounds
    from fltiny.server.store import RunStore
    from fltiny.strategies import make_strategy

    hr = HostRound(har_tiny_bundle)
    mhash = hashlib.sha256((har_tiny_bundle / "backbone.tflite").read_bytes()).digest()[:8]
    blobs = fleet_blobs(har_tiny_bundle, 6, max_windows=64)
    modes = ["honest", "garbage", "wrong-key", "replay", "bad-index", "liar"]
    fakes, eps = [], []
    for i, mode in enumerate(modes):
        key = os.urandom(32) if mode == "wrong-key" else DEV_KEY
        f = FakeDevice(mode, i + 1, key, hr, blobs[i], mhash)
        fakes.append(f)
        eps.append(Endpoint(i + 1, f.url, blobs[i], 64, DEV_KEY, mode))
    logs: list[str] = []
    try:
        bf = BridgeFleet(eps, hr, model_hash=mhash, log=logs.append, global_delta=False,
                         hello_wait=2.0)
        bf._replay_lock = LOCK
        store = RunStore(tmp_path / "run.sqlite")
        init = hr.head.params.astype(np.float32)
        run_rounds(bf, make_strategy("fedavg"), store,
                   RoundConfig(rounds=2, deadline_s=8, train=TrainParams(epochs=1)), init,
                   lambda p: {"norm": float(np.linalg.norm(p))}, log=logs.append)
        bf.close()
    finally:
        for f in fakes:
            f.close()
    rows = store.updates()
    by = {(r["round"], r["device_id"]): r for r in rows}
    print("\n".join(logs))
    for rnd in (1, 2):
        assert by[(rnd, 1)]["accepted"] == 1
        for dev in (2, 3, 4, 5, 6):
            if (dev, rnd) == (4, 1):  # the replaying device is honest in round 1
                continue
            assert by[(rnd, dev)]["accepted"] == 0
    assert "no authenticated HELLO" in by[(1, 2)]["reason"]
    assert "wrong key" in by[(1, 3)]["reason"] and "FLT_ERR_AUTH" in by[(1, 3)]["reason"]
    assert "no DELTA" in by[(2, 4)]["reason"]
    assert "FLT_ERR_REPLAY" in by[(2, 4)]["reason"] or "FLT_ERR_DUPLICATE" in by[(2, 4)]["reason"]
    assert by[(1, 5)]["reason"] == "payload rejected: FLT_ERR_RANGE"
    assert by[(1, 6)]["reason"].startswith("replay mismatch")
    # the global model moved only by the accepted updates: honest (+ replay-device round 1)
    hist = store.history()
    assert not np.array_equal(hist[1].params, hist[0].params)
    store.close()
