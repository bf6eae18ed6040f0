"""`fltiny run --secagg` on emulated boards (docs/protocol.md "Secure aggregation on the device
link"): the boards' firmware masks, the bridge runs the server's SecAggRound over their
sessions, and the round loop applies the secure mean.

The oracle is independent of the masked path: the host replays every device's round through
the same C (it holds the boards' data in emulation), takes the replay's trained parameters
minus the ones the device held, and quantizes them with the runtime's quantizer on the
round's index set; the plain sum of those values must equal what the secure sum decoded, and
the model the run saved must be the previous one plus their mean, bit for bit. A single
device's MASKED payload, as the server received it, must look like noise next to its own
quantized update.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "qemu-system-riscv32", "arm-none-eabi-gcc",
                                "riscv64-unknown-elf-gcc")]


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("secagg-build")


def _spy(monkeypatch):
    """What the test watches: each replayed device delta (the oracle's input) and each round's
    server (what the aggregator received) and secure sum."""
    from fltiny.bridge.fleet import BridgeFleet
    from fltiny.bridge.secagg import BridgeSecAgg

    deltas: dict[tuple[int, int], np.ndarray] = {}
    rounds: dict[int, tuple] = {}
    replay, secure = BridgeFleet._replay, BridgeSecAgg.round

    def spy_replay(self, d, delta, tmsg):
        out = replay(self, d, delta, tmsg)
        if out is not None:
            deltas[(tmsg.round, d.ep.device_id)] = (out[0].params - d.params).astype(np.float32)
        return out

    def spy_round(self, rnd, ids, ask, plain):
        try:
            return secure(self, rnd, ids, ask, plain)
        finally:
            rounds[rnd] = (self.server, self.last)

    monkeypatch.setattr(BridgeFleet, "_replay", spy_replay)
    monkeypatch.setattr(BridgeSecAgg, "round", spy_round)
    return deltas, rounds


def _run(fleet, bundle, build_root, out, dropout=0.0):
    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run

    opts = RunOptions(fleet=fleet, strategy="fedavg", secagg_dropout=dropout,
                      server=RoundConfig(rounds=2, deadline_s=240, secagg=True),
                      data=DataSettings(bundle=bundle), out=out, build_root=build_root)
    return run(opts, say=print, log=print)


def _check_rounds(res, deltas, rounds, n_devices, n_params, out):
    """Every round decoded exactly the plain sum of the replayed devices' quantized updates, and
    the saved model moved by exactly their mean."""
    from fltiny.native import secagg as sa
    from fltiny.server.store import RunStore

    store = RunStore(out / "run.sqlite")
    try:
        for rnd in (1, 2):
            srv, ss = rounds[rnd]
            assert ss is not None, f"round {rnd} did not decode"
            co = srv.cohort_msg
            assert len(co.members) == n_devices and list(ss.devices) == srv.survivors
            idx = sa.index_set(co.index_seed, rnd, n_params, co.k)
            total = np.zeros(co.k, dtype=np.int64)
            for d in ss.devices:
                q = sa.quantize(deltas[(rnd, d)], idx, co.scale, co.qmax).view(np.int32)
                total += q
            assert np.array_equal(srv.result(), total)  # exact, value by value
            assert np.count_nonzero(total) > co.k // 4  # the round carried a real update
            mean = np.zeros(n_params, dtype=np.float32)
            mean[idx] = (total / (co.scale * len(ss.devices))).astype(np.float32)
            assert np.array_equal(ss.mean, mean)
            before = store.checkpoint_of_round(rnd - 1).params
            after = store.checkpoint_of_round(rnd).params
            assert np.array_equal(after, (before + np.float32(1.0) * mean).astype(np.float32))
        rows = store.updates()
    finally:
        store.close()
    # the aggregator got no individual update: every DELTA came without a body, the replay
    # verified the rest of it, and the rows say the round was masked
    assert len(rows) == 2 * n_devices
    for u in rows:
        f = u["figures"]
        assert f["masked"] and f["payload_bytes"] == 0 and f["verification"] == "replay-metadata"
        assert f["masked_payload_bytes"] > 0
        # masked uplink payload at most 2x the plain sparse payload of the same round
        assert f["masked_payload_bytes"] <= 2 * f["plain_payload_bytes"]
    for r in res.rounds[1:]:
        assert r["secagg"] == 1.0 and 0 < r["masked_ratio"] <= 2.0


def test_secagg_three_m4f_boards_exact_and_masked(har_tiny_bundle, build_root, tmp_path,
                                                  monkeypatch):
    from fltiny.devices.replay import HostRound
    from fltiny.native import secagg as sa

    deltas, rounds = _spy(monkeypatch)
    out = tmp_path / "report"
    res = _run([("qemu-m4f", 3)], har_tiny_bundle, build_root, out)
    n_params = HostRound(har_tiny_bundle).n_params
    _check_rounds(res, deltas, rounds, 3, n_params, out)
    # what the server received: public keys, sealed boxes, masked values, revealed shares
    srv, ss = rounds[2]
    kinds = {k for _d, k, _p in srv.received}
    assert kinds == {"ADVERTISE", "SHARES", "MASKED", "REVEAL"}
    co = srv.cohort_msg
    idx = sa.index_set(co.index_seed, 2, n_params, co.k)
    mod = 1 << co.w
    for dev, kind, payload in srv.received:
        if kind != "MASKED":
            continue
        _rnd, w, y = sa.decode_masked(payload)
        q = sa.quantize(deltas[(2, dev)], idx, co.scale, co.qmax).view(np.int32).astype(np.int64)
        assert np.count_nonzero(q) > co.k // 4
        ys = y.astype(np.int64)
        ys = np.where(ys >= mod // 2, ys - mod, ys)  # decoded alone, as a signed w-bit value
        # noise unrelated to the update: no correlation, spread over the whole w-bit range
        # (the update itself lies within +-qmax, a small part of it), hardly ever equal
        assert abs(np.corrcoef(ys, q)[0, 1]) < 0.35
        assert np.mean(np.abs(ys) > co.qmax) > 0.4
        assert np.mean(ys == q) < 0.1
        assert 0.3 < np.mean(y / mod) < 0.7


def test_secagg_mixed_boards_third_drop_after_masked(har_tiny_bundle, build_root, tmp_path,
                                                     monkeypatch):
    from fltiny.devices.replay import HostRound

    deltas, rounds = _spy(monkeypatch)
    out = tmp_path / "report"
    res = _run([("qemu-m4f", 3), ("qemu-rv32", 3)], har_tiny_bundle, build_root, out,
               dropout=0.34)
    _check_rounds(res, deltas, rounds, 6, HostRound(har_tiny_bundle).n_params, out)
    for rnd in (1, 2):
        srv, ss = rounds[rnd]
        assert len(ss.dropped_after) == 2  # a third sent MASKED, then was sent no UNMASK
        responders = {d for d, k, _p in srv.received if k == "REVEAL"}
        assert responders == set(ss.devices) - set(ss.dropped_after)


def test_secagg_refused_on_a_board_without_it():
    from fltiny.errors import UsageError
    from fltiny.experiment import RoundConfig
    from fltiny.run.runner import RunOptions

    with pytest.raises(UsageError) as e:
        RunOptions(fleet=[("qemu-m4f", 2), ("qemu-m3", 1)], strategy="fedavg",
                   server=RoundConfig(secagg=True))
    assert "qemu-m3" in str(e.value) and "\n" not in str(e.value)
    RunOptions(fleet=[("qemu-m4f", 2), ("qemu-rv32", 1)], strategy="fedavg",
               server=RoundConfig(secagg=True))  # boards with room for it: accepted
    from fltiny.experiment import DataSettings

    for other in (dict(data=DataSettings(model="auto")), dict(transport="mqtt")):
        with pytest.raises(UsageError, match="--secagg"):  # not silently run unmasked
            RunOptions(fleet=[("qemu-m4f", 2)], strategy="fedavg",
                       server=RoundConfig(secagg=True), **other)


@pytest.mark.parametrize("name", ["qemu-m3", "qemu-m4f"])
def test_board_answers_secagg_messages(name, har_tiny_bundle, build_root):
    """qemu-m3's firmware leaves secure aggregation out (64 kB of RAM) and says so: no HELLO
    capability, an ERROR naming the reason for SECAGG and for TRAIN SECAGG. qemu-m4f's has it:
    the capability, and a SECAGG step out of order or a host-only kind answered with an ERROR
    naming the step (the link acknowledged the frame: its kind is known)."""
    from fltiny.boards import get_board
    from fltiny.bridge import messages as m
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.link import socket_session
    from fltiny.devices.replay import HostRound
    from fltiny.native import secagg as sa
    from fltiny.run.runner import cached_firmware

    board = get_board(name)
    elf = cached_firmware(board, har_tiny_bundle, build_root, print, secagg=True)
    project = elf.parent / "project"
    has = (project / "src" / "runtime" / "secagg").is_dir()
    config = (project / "include" / "fltiny_config.h").read_text()
    assert has == (name != "qemu-m3") and f"#define FLT_APP_SECAGG {int(has)}" in config
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    hr = HostRound(har_tiny_bundle)
    with start_fleet(board, elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        hello = s.recv(15)
        assert bool(hello.capabilities & m.CAP_SECAGG) == has
        unmask = sa.encode_unmask(1, [1, 2], [])
        s.send(m.Secagg(m.SecaggKind.UNMASK, unmask))  # before any BEGIN
        err = s.recv(15)
        assert isinstance(err, m.Error), err
        if not has:
            assert err.text.startswith("secure aggregation is not built into this firmware")
            s.send(m.Global.full(1, hr.head.params))
            s.send(m.Train(round=1, epochs=1, batch_size=16, learning_rate=0.02,
                           topk_fraction=0.1, seed=3,
                           flags=m.TRAIN_SECAGG | m.TRAIN_NO_FEEDBACK))
            err = s.recv(30)
            assert isinstance(err, m.Error) and "not built into this firmware" in err.text
            return
        assert err.text == "secagg UNMASK refused" and err.code == 11  # FLT_ERR_STATE
        s.send(m.Secagg(m.SecaggKind.MASKED, bytes(13)))  # a device's kind, from the host
        err = s.recv(15)
        assert isinstance(err, m.Error) and err.code == 7 and "device's kind" in err.text
        s.send(m.Global.full(1, hr.head.params))
        s.send(m.Train(round=1, epochs=1, batch_size=16, learning_rate=0.02, topk_fraction=0.1,
                       seed=3, flags=m.TRAIN_SECAGG))  # without NO_FEEDBACK
        err = s.recv(30)
        assert isinstance(err, m.Error) and "needs NO_FEEDBACK" in err.text
