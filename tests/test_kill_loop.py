"""The aggregator killed and resumed while its boards keep running (issue 19, item 3).

- A short kill loop (fltiny/bench/kill_loop.py; bench/kill_loop.py runs 20 kills): two qemu-m4f
  boards from ``fltiny emulate --pty --fleet-file``, ``fltiny run --fleet-file`` (8 rounds) SIGKILLed
  three times (during start-up, during the rounds, inside a checkpoint's transaction) and
  resumed: no round lost, every checkpoint bit-identical to an uninterrupted run's.
- The device side on a native board: the same TRAIN again gets the same DELTA (delivered or
  not), a GLOBAL delta to the version it holds changes nothing, another TRAIN of the round it
  delivered is still refused.
- The run store's host state: newest record per device, the sequence lease raised at each
  checkpoint and at each resume, a session that refuses to pass its lease.
- One-line errors for a resume of a store written by another fleet.
"""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.bridge import messages as m
from fltiny.server.store import SEQ_LEASE, DeviceRecord, RunStore


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_killed_and_resumed_run_is_bit_identical(har_tiny_bundle, tmp_path):
    from fltiny.bench.kill_loop import KINDS, run_loop, table

    r = run_loop(har_tiny_bundle, tmp_path / "build", tmp_path / "work", boards=2, rounds=8,
                 kills=3, seed=1, say=print)
    print(table(r))
    assert sorted(k.kind for k in r.kills) == sorted(KINDS)
    assert all(k.killed for k in r.kills), table(r)
    ckpt = next(k for k in r.kills if k.kind == "checkpoint")
    assert "rolled back" in ckpt.landed  # the round was re-run on resume
    assert r.lost_rounds == [], "\n".join(r.log[-80:])
    assert r.versions_equal and r.updates_equal, "\n".join(r.log[-80:])
    assert r.final_sha256 == r.reference_sha256


@pytest.mark.slow
def test_device_repeats_its_round_and_ignores_a_global_it_holds(har_tiny_bundle, tmp_path):
    """What a resumed host relies on, on a native board running the firmware."""
    from fltiny.boards import get_board
    from fltiny.build.firmware import build_firmware
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.link import socket_session
    from fltiny.devices.replay import HostRound
    from fltiny.native.status import status_name
    from fltiny.server.downlink import Held, global_message

    board = get_board("native")
    elf = build_firmware(board, har_tiny_bundle, tmp_path / "fw").elf
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    hr = HostRound(har_tiny_bundle)
    train = [m.Train(round=r, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                     topk_fraction=0.05, seed=11 + r) for r in range(3)]
    g1 = (hr.head.params + np.float32(0.01)).astype(np.float32)
    g2 = (g1 - np.float32(0.003) * np.sign(g1)).astype(np.float32)
    with start_fleet(board, elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        s.send(m.Global.full(1, g1))
        s.send(train[1])
        d1 = s.recv(60)
        host1 = hr.run(g1, blob, train[1], max_windows=board.max_windows)
        assert isinstance(d1, m.Delta) and d1.body == host1.payload
        # the same TRAIN again (its DELTA delivered and committed): the same DELTA, bit for bit
        s.send(train[1])
        again = s.recv(30)
        assert isinstance(again, m.Delta), again
        assert again.encode() == d1.encode()
        # a GLOBAL delta 1 -> 2, then the same GLOBAL again: applied once
        gmsg, held = global_message(g2, 2, Held(1, g1.copy()))
        assert gmsg is not None and gmsg.kind == m.GlobalKind.DELTA
        s.send(gmsg)
        s.send(gmsg)
        s.send(train[2])
        d2 = s.recv(60)
        # the residual committed once (the repeated round's ACK committed the same state)
        host2 = hr.run(held.params, blob, train[2], host1.state, max_windows=board.max_windows)
        assert isinstance(d2, m.Delta) and d2.base_version == 2, d2
        assert d2.body == host2.payload
        # another TRAIN of the round it delivered: refused as before
        other = m.Train(round=2, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                        topk_fraction=0.05, seed=99)
        s.send(other)
        err = s.recv(30)
        assert isinstance(err, m.Error) and status_name(err.code) == "FLT_ERR_DUPLICATE", err


def test_store_keeps_the_newest_host_state_and_raises_the_lease(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    p = np.zeros(4, np.float32)
    store.save(0, p, {}, {}, devices={1: DeviceRecord(b"a0", 1), 2: DeviceRecord(b"b0", 1)})
    store.save(1, p, {}, {}, devices={1: DeviceRecord(b"a1", 40)})
    assert store.device_states() == {1: b"a1", 2: b"b0"}
    # a resumed host starts at the lease and raises it at once (a second kill is resumed above)
    assert store.take_seq_leases([1, 2, 3]) == {1: 40 + SEQ_LEASE, 2: 1 + SEQ_LEASE}
    assert store.take_seq_leases([1]) == {1: 40 + 2 * SEQ_LEASE}
    # a checkpoint never lowers it (a rebooted device's session starts at 1 again)
    store.save(2, p, {}, {}, devices={1: DeviceRecord(b"a2", 5)})
    assert store.take_seq_leases([1]) == {1: 40 + 3 * SEQ_LEASE}
    import sqlite3

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM device_states")
    store.close()


def test_session_refuses_to_pass_its_lease():
    from fltiny.bridge.session import Session
    from fltiny.native.errors import DeliveryError
    from fltiny.native.proto import chunk_count

    def session(limit: int) -> tuple[Session, list[bytes]]:
        sent: list[bytes] = []
        return Session(key=bytes(32), device_id=1, send=sent.append, receive=lambda: b"",
                       first_seq=10, seq_limit=limit, clock=lambda: 0.0), sent

    msg = m.Global.full(3, np.zeros(100, np.float32))
    n = chunk_count(len(msg.encode()))
    assert n >= 2
    s, sent = session(10 + n)  # seqs 10 .. 10 + n - 1: inside the lease
    s.submit(msg)
    s.poll()
    assert len(sent) == n  # a GLOBAL of 2 chunks: a burst (docs/protocol.md "Answered messages")
    s, sent = session(10 + n - 1)  # its last chunk would take the lease's end
    s.submit(msg)
    with pytest.raises(DeliveryError, match="past the lease"):
        s.poll()
    assert sent == []


def _port_store(path, hr, url: str, running: bool = True):
    from fltiny.bridge.fleet import BridgeFleet, Endpoint

    hello = m.Hello("qemu-m4f", 7, 1, b"\0" * 8, 0, hr.n_params, 1000)
    bf = BridgeFleet([Endpoint(1, url, None, key=bytes(32), board="qemu-m4f", running=running,
                               hello=hello)], hr, model_hash=b"\0" * 8)
    store = RunStore(path)
    store.start({})
    store.save(0, hr.head.params.astype(np.float32), {}, {}, devices=bf.host_state())
    store.close()


@pytest.mark.slow
def test_resume_of_another_fleet_is_one_line(cli, har_tiny_bundle, tmp_path):
    from fltiny.devices.replay import HostRound

    hr = HostRound(har_tiny_bundle)
    out = tmp_path / "run"
    out.mkdir()
    _port_store(out / "run.sqlite", hr, "/dev/pts/900")
    code, _o, err = cli("run", "--port", "/dev/pts/901", "--resume", "--rounds", "2",
                        "--bundle", har_tiny_bundle, "--out", out)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in err, err
    assert "written by another fleet" in errors[0] and "/dev/pts/900" in errors[0]
    # a store of running boards resumed as a run of boards it starts itself
    code, _o, err = cli("run", "--board", "native", "--devices", "1", "--resume", "--rounds",
                        "2", "--bundle", har_tiny_bundle, "--out", out)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in err, err
    assert "resume it with the same ports" in errors[0]
    # and the other way round
    other = tmp_path / "started"
    other.mkdir()
    _port_store(other / "run.sqlite", hr, "tcp://127.0.0.1:9", running=False)
    code, _o, err = cli("run", "--port", "tcp://127.0.0.1:9", "--resume", "--rounds", "2",
                        "--bundle", har_tiny_bundle, "--out", other)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in err, err
    assert "boards it started itself" in errors[0]
