"""The safe default on the device, real firmware on emulated boards: DISABLE stops training
(TRAIN -> ERROR naming it, no DELTA) and the device serves its factory head until ENABLE; a
GLOBAL it cannot apply reverts it to the factory head, and it says so (ERROR, then STATUS);
enabled again or resynced with a FULL GLOBAL, its rounds replay bit for bit on the host.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fltiny.boards import get_board
from fltiny.bridge import messages as m
from fltiny.build.firmware import build_firmware
from fltiny.build.project import DEV_KEY
from fltiny.devices import fleet_blobs, start_fleet
from fltiny.devices.data import DeviceDataStatus
from fltiny.devices.link import socket_session
from fltiny.devices.replay import DeviceState, HostRound
from fltiny.native.status import status_name

pytestmark = [pytest.mark.slow]

_ELF: dict[str, object] = {}


def _firmware(board, bundle, tmp_path_factory):
    if board.name not in _ELF:
        out = tmp_path_factory.getbasetemp() / "fw-disable" / board.name
        _ELF[board.name] = build_firmware(board, bundle, out).elf
    return _ELF[board.name]


def _status(s) -> DeviceDataStatus:
    s.send(m.Status("?"))
    reply = s.recv(15)
    assert isinstance(reply, m.Status), reply
    return DeviceDataStatus.parse(reply.text)


def _train(rnd: int) -> m.Train:
    return m.Train(round=rnd, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                   topk_fraction=0.05, seed=11 + rnd)


def _boards() -> list[str]:
    names = ["native"]
    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
        names.append("qemu-m4f")
    return names


@pytest.mark.parametrize("name", _boards())
def test_disable_serves_factory_and_enable_rejoins(name, har_tiny_bundle, tmp_path_factory):
    board = get_board(name)
    elf = _firmware(board, har_tiny_bundle, tmp_path_factory)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    hr = HostRound(har_tiny_bundle)
    g1 = (hr.head.params + np.float32(0.01)).astype(np.float32)
    with start_fleet(board, elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        st = _status(s)
        assert (st.source, st.serving, st.training) == ("blob", "factory", "on")
        s.send(m.Global.full(1, g1))
        s.send(_train(1))
        d1 = s.recv(60)
        assert isinstance(d1, m.Delta) and d1.base_version == 1
        host1 = hr.run(g1, blob, _train(1), max_windows=board.max_windows)
        assert d1.body == host1.payload
        assert (_status(s).serving, _status(s).training) == ("global", "on")

        # DISABLE: no DELTA, an ERROR that names it; the next STATUS reports the factory model
        s.send(m.Disable(True))
        st = _status(s)
        assert (st.serving, st.training, st.count) == ("factory", "off", len(blob.windows))
        s.send(_train(2))
        err = s.recv(30)
        assert isinstance(err, m.Error), err
        assert status_name(err.code) == "FLT_ERR_STATE" and "disabled" in err.text
        # a GLOBAL while disabled is kept, not served
        g2 = (g1 - np.float32(0.005)).astype(np.float32)
        s.send(m.Global.full(2, g2))
        assert _status(s).serving == "factory"

        # ENABLE: it rejoins from the model it holds (version 2), replayed bit for bit
        s.send(m.Disable(False))
        st = _status(s)
        assert (st.serving, st.training) == ("global", "on")
        s.send(_train(3))
        d3 = s.recv(60)
        assert isinstance(d3, m.Delta), d3
        host3 = hr.run(g2, blob, _train(3), host1.state, max_windows=board.max_windows)
        assert d3.base_version == 2 and d3.body == host3.payload
        assert np.float32(d3.personal_metric) == np.float32(host3.personal_metric)


@pytest.mark.parametrize("name", _boards()[:1])
def test_unappliable_global_reverts_to_factory(name, har_tiny_bundle, tmp_path_factory):
    board = get_board(name)
    elf = _firmware(board, har_tiny_bundle, tmp_path_factory)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    hr = HostRound(har_tiny_bundle)
    g1 = (hr.head.params + np.float32(0.01)).astype(np.float32)
    with start_fleet(board, elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        s.send(m.Global.full(1, g1))
        assert _status(s).serving == "global"
        # a FULL GLOBAL of the wrong size: valid on the wire, not for this head
        s.send(m.Global.full(2, np.zeros(hr.n_params - 1, np.float32)))
        err = s.recv(15)
        assert isinstance(err, m.Error), err
        assert "serving the factory model" in err.text
        assert _status(s).serving == "factory"
        s.send(_train(1))  # no round from a model the host did not send
        err = s.recv(30)
        assert isinstance(err, m.Error) and "FULL" in err.text, err
        # a FULL GLOBAL resyncs it: its round replays from a fresh state
        s.send(m.Global.full(3, g1))
        assert _status(s).serving == "global"
        s.send(_train(2))
        d = s.recv(60)
        assert isinstance(d, m.Delta), d
        host = hr.run(g1, blob, _train(2), DeviceState.fresh(hr.n_params),
                      max_windows=board.max_windows)
        assert d.base_version == 3 and d.body == host.payload


def test_ctl_disable_on_a_run_of_native_boards(har_tiny_bundle, tmp_path):
    """`fltiny ctl disable 2` during a run of real native firmware: the bridge sends DISABLE,
    the device answers STATUS "serving=factory training=off" (kept in the control's audit
    record), sends no DELTA while disabled, and after `enable 2` rejoins with a replayed,
    accepted update; the audit chain verifies."""
    import json

    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run
    from fltiny.server.store import RunStore

    out = tmp_path / "report"
    queued = {1: "disable", 2: "enable"}

    def progress(mt) -> None:  # called after each round's checkpoint, before the next round
        if mt.round in queued:
            s = RunStore(out / "run.sqlite")
            try:
                s.add_control(queued[mt.round], 2)
            finally:
                s.close()

    run(RunOptions(fleet=[("native", 3)], server=RoundConfig(rounds=3, deadline_s=60),
                   data=DataSettings(bundle=har_tiny_bundle), out=out,
                   build_root=tmp_path / "build"),
        progress, say=print, log=print)
    store = RunStore(out / "run.sqlite")
    try:
        rows = {r: {u["device_id"]: u for u in store.updates(r)} for r in (1, 2, 3)}
        assert sorted(rows[1]) == [1, 2, 3] and sorted(rows[2]) == [1, 3]  # no DELTA asked
        assert sorted(rows[3]) == [1, 2, 3]
        back = rows[3][2]
        figures = back["figures"]
        figures = json.loads(figures) if isinstance(figures, str) else figures
        assert back["accepted"] == 1 and figures["verification"] == "replay"
        bodies = [json.loads(b) for (b,) in store.db.execute(
            "SELECT body FROM audit WHERE run_id = 'run' ORDER BY version")]
        ctl = {c["action"]: c for b in bodies for c in b["controls"]}
        off = DeviceDataStatus.parse(ctl["disable"]["device"]["status"])
        on = DeviceDataStatus.parse(ctl["enable"]["device"]["status"])
        assert ctl["disable"]["device"]["delivered"] and ctl["enable"]["device"]["delivered"]
        assert (off.serving, off.training) == ("factory", "off")
        # the model it served before: the run's default serves each device's local model
        assert on.serving in ("global", "personal") and on.training == "on"
        assert store.verify().ok
    finally:
        store.close()
