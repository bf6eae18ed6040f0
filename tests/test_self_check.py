"""The device's self-check (TRAIN flags bits 16-23, firmware/app/flt_device.h): after a GLOBAL
applies, the next TRAIN first compares the new global model with the factory head on the
device's personal test split; worse by more than the drop, the device reverts to the factory
model and says so in its ERROR (figures in per mille), serves the factory head and waits for a
FULL GLOBAL. The host's flt_round_self_check (HostRound.self_check, the same C) gives the same
verdict and figures; a passed check leaves the round byte for byte what the host replays.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from fltiny.boards import get_board
from fltiny.bridge import messages as m
from fltiny.build.firmware import build_firmware
from fltiny.build.project import DEV_KEY
from fltiny.devices import fleet_blobs, start_fleet
from fltiny.devices.data import DeviceDataStatus
from fltiny.devices.link import socket_session
from fltiny.devices.replay import HostRound
from fltiny.native.status import status_name

_ELF: dict[str, object] = {}


def _firmware(board, bundle, tmp_path_factory):
    if board.name not in _ELF:
        out = tmp_path_factory.getbasetemp() / "fw-selfcheck" / board.name
        _ELF[board.name] = build_firmware(board, bundle, out).elf
    return _ELF[board.name]


def _train(rnd: int, drop: float = 0.0) -> m.Train:
    return m.Train(round=rnd, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                   topk_fraction=0.05, seed=11 + rnd,
                   flags=int(round(drop * 100)) << m.TRAIN_CHECK_SHIFT)


def _status(s) -> DeviceDataStatus:
    s.send(m.Status("?"))
    reply = s.recv(15)
    assert isinstance(reply, m.Status), reply
    return DeviceDataStatus.parse(reply.text)


def _harmful(hr: HostRound) -> np.ndarray:
    """The factory head with its parameters sign-flipped: a model that is wrong on most
    windows (what a poisoned aggregate could send)."""
    return (-hr.head.params).astype(np.float32)


def test_train_carries_the_drop_and_refuses_above_100():
    t = _train(1, 0.2)
    assert (t.flags >> m.TRAIN_CHECK_SHIFT) & 0xFF == 20
    assert m.decode_message(m.MsgType.TRAIN, t.encode()) == t
    from fltiny.native.errors import ProtocolError

    with pytest.raises(ProtocolError):
        replace(t, flags=101 << m.TRAIN_CHECK_SHIFT).encode()
    from fltiny.server.config import TrainParams

    assert TrainParams(self_check=0.05).message(1, 7).flags >> m.TRAIN_CHECK_SHIFT == 5
    assert TrainParams().message(1, 7).flags >> m.TRAIN_CHECK_SHIFT == 0


@pytest.mark.slow
def test_host_self_check_rule(har_tiny_bundle):
    hr = HostRound(har_tiny_bundle)
    blob = fleet_blobs(har_tiny_bundle, 1)[0]
    bad = hr.self_check(_harmful(hr), blob, _train(1, 0.1))
    assert bad.failed and bad.n == blob.n_test
    assert bad.reference_metric - bad.metric > 0.1
    same = hr.self_check(hr.head.params, blob, _train(1, 0.01))
    assert not same.failed and same.metric == same.reference_metric
    off = hr.self_check(_harmful(hr), blob, _train(1, 0.0))
    assert (off.n, off.failed) == (0, False)
    # the threshold decides: a drop just below the measured one fails, just above passes
    gap = bad.reference_metric - bad.metric
    lo = int(np.floor(gap * 100)) - 1
    assert hr.self_check(_harmful(hr), blob, _train(1, lo / 100)).failed
    if int(np.ceil(gap * 100)) + 1 <= 100:
        assert not hr.self_check(_harmful(hr), blob,
                                 _train(1, (int(np.ceil(gap * 100)) + 1) / 100)).failed


def _boards() -> list[str]:
    names = ["native"]
    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
        names.append("qemu-m3")  # the tightest RAM: the check adds no buffer
    return names


@pytest.mark.slow
@pytest.mark.parametrize("name", _boards())
def test_failed_self_check_reverts_to_factory_and_says_so(name, har_tiny_bundle,
                                                           tmp_path_factory):
    board = get_board(name)
    elf = _firmware(board, har_tiny_bundle, tmp_path_factory)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    hr = HostRound(har_tiny_bundle)
    bad = _harmful(hr)
    good = (hr.head.params + np.float32(0.001)).astype(np.float32)
    with start_fleet(board, elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        # check off: the harmful model trains like any other, its round replays bit for bit
        s.send(m.Global.full(1, bad))
        s.send(_train(1))
        d1 = s.recv(60)
        assert isinstance(d1, m.Delta), d1
        host1 = hr.run(bad, blob, _train(1), max_windows=board.max_windows)
        assert d1.body == host1.payload
        # check on: a harmful GLOBAL reverts the device, its ERROR says so with the figures
        s.send(m.Global.full(2, bad))
        s.send(_train(2, 0.1))
        err = s.recv(60)
        assert isinstance(err, m.Error), err
        assert status_name(err.code) == "FLT_ERR_STATE"
        assert err.text.startswith("self-check failed, serving the factory model")
        sc = hr.self_check(bad, blob, _train(2, 0.1), max_windows=board.max_windows)
        assert sc.failed and sc.text() in err.text, (sc, err.text)
        assert _status(s).serving == "factory"
        s.send(_train(3, 0.1))  # no round until a FULL GLOBAL
        err = s.recv(30)
        assert isinstance(err, m.Error) and "send FULL" in err.text, err
        # resynced with a good model, the check passes and the round replays bit for bit
        # from the state it had (the failed check trained nothing)
        s.send(m.Global.full(3, good))
        assert _status(s).serving in ("global", "personal")
        s.send(_train(4, 0.1))
        d4 = s.recv(60)
        assert isinstance(d4, m.Delta), d4
        host4 = hr.run(good, blob, _train(4, 0.1), host1.state, max_windows=board.max_windows)
        assert d4.base_version == 3 and d4.body == host4.payload
        assert np.float32(d4.personal_metric) == np.float32(host4.personal_metric)
        assert not hr.self_check(good, blob, _train(4, 0.1), max_windows=board.max_windows).failed


def _harmful_second_aggregate():
    """Experiment.strategy whose 2nd aggregate is the update sign-flipped at the model's norm."""
    from fltiny.experiment import Experiment

    make = Experiment.strategy
    calls = {"n": 0}

    def harmful_strategy(self):
        strategy = make(self)
        honest = strategy.aggregate

        def aggregate(params, updates):
            out = honest(params, updates)
            calls["n"] += 1
            if calls["n"] == 2:
                step = out - params
                scale = np.linalg.norm(params) / max(float(np.linalg.norm(step)), 1e-12)
                return (params - np.float32(scale) * step).astype(np.float32)
            return out

        strategy.aggregate = aggregate
        return strategy

    return harmful_strategy


@pytest.mark.slow
def test_run_records_reverted_devices_and_resyncs_them(har_tiny_bundle, tmp_path, monkeypatch):
    """`fltiny run --self-check 0.2` on native boards, the 2nd aggregate sign-flipped (a test
    hook around the strategy): in round 3 every device's self-check of that model fails, the
    run store records it (recomputed by the host: the same verdict), no update is accepted,
    round 4 resyncs each device with a FULL GLOBAL; the audit chain verifies."""
    import json

    from fltiny.experiment import DataSettings, Experiment, RoundConfig, TrainParams
    from fltiny.run.runner import RunOptions, run
    from fltiny.server.store import RunStore

    monkeypatch.setattr(Experiment, "strategy", _harmful_second_aggregate())
    out = tmp_path / "report"
    res = run(RunOptions(fleet=[("native", 3)],
                         server=RoundConfig(rounds=4, deadline_s=60,
                                            train=TrainParams(self_check=0.2)),
                         data=DataSettings(bundle=har_tiny_bundle), out=out,
                         build_root=tmp_path / "build"),
              say=print, log=print)
    store = RunStore(out / "run.sqlite")
    try:
        rows = {r: {u["device_id"]: u for u in store.updates(r)} for r in (1, 2, 3, 4)}
        figures = {r: {d: (json.loads(u["figures"]) if isinstance(u["figures"], str)
                           else u["figures"]) for d, u in rows[r].items()} for r in rows}
        assert all(u["accepted"] == 1 for r in (1, 2) for u in rows[r].values())
        for d, u in rows[3].items():
            assert u["accepted"] == 0, u
            assert u["reason"].startswith("device error: self-check failed, serving the "
                                          "factory model"), u["reason"]
            assert "the same verdict" in u["reason"]
            assert figures[3][d]["self_check"] == "replayed"
        # resynced: the next round sends each reverted device the FULL model
        assert {f["global_kind"] for f in figures[4].values()} == {"full"}
        assert store.verify().ok
    finally:
        store.close()
    s = res.summary
    assert s["self_check_reverts"] >= 3 and s["self_check_replayed"] == s["self_check_reverts"]
    assert s["self_check_mismatches"] == 0


@pytest.mark.slow
def test_simulated_devices_run_the_same_self_check(har_tiny_bundle, tmp_path, monkeypatch):
    """fltiny simulate: the simulated device runs the same check (HostRound.self_check) after
    each GLOBAL; a failed one is a rejected row with the device's text and a FULL next round."""
    from fltiny.experiment import DataSettings, Experiment, RoundConfig, SimConfig, TrainParams
    from fltiny.server.store import RunStore
    from fltiny.sim.run import simulate

    monkeypatch.setattr(Experiment, "strategy", _harmful_second_aggregate())
    res = simulate(SimConfig(clients=3, data=DataSettings(bundle=har_tiny_bundle),
                             server=RoundConfig(rounds=3, train=TrainParams(self_check=0.2)),
                             out=tmp_path / "sim"))
    store = RunStore(res.store)
    try:
        r2 = store.updates(2)
        r3 = store.updates(3)
        assert r2 and all(u["accepted"] == 1 for u in r2)
        assert r3 and all(u["accepted"] == 0 and "self-check failed" in u["reason"] for u in r3)
    finally:
        store.close()
