"""Boards that collect their own windows: a recording replayed through the sensor hook fills the
window store during a protocol session, windows that arrive between rounds reach the next
round's training, the store never holds more than its generated capacity (the oldest dropped and
counted), and a round on the store's view is bit for bit the host's round on a blob holding the
same windows (the store path is the blob path). Real firmware processes (native, QEMU), a real
session, no mocks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from skip_policy import require_tools

from fltiny.boards import get_board
from fltiny.bridge import messages as m
from fltiny.build.firmware import build_firmware
from fltiny.build.project import DEV_KEY, useful_store_windows
from fltiny.devices import start_fleet
from fltiny.devices.data import DataBlob, DeviceDataStatus, Recording, fleet_recordings
from fltiny.devices.data import personal_n_test as n_test
from fltiny.devices.link import socket_session

pytestmark = [pytest.mark.slow, pytest.mark.cross]

TOOLS = {"qemu-m4f": ("qemu-system-arm", "arm-none-eabi-gcc"),
         "qemu-rv32": ("qemu-system-riscv32", "riscv64-unknown-elf-gcc")}
SMALL_WINDOWS = 24  # the native firmware of these tests trains on at most 24 windows per round

_BUILDS: dict[tuple, object] = {}


def _firmware(board_name, bundle, tmp_path_factory, **kw):
    key = (board_name, tuple(sorted((k, str(v)) for k, v in kw.items())))
    if key not in _BUILDS:
        out = tmp_path_factory.getbasetemp() / "fw-windows" / f"{board_name}-{len(_BUILDS)}"
        _BUILDS[key] = build_firmware(get_board(board_name), bundle, out, **kw)
    return _BUILDS[key]


def _symbol_sizes(elf, names):
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    sizes = {}
    with open(elf, "rb") as fh:
        for sec in ELFFile(fh).iter_sections():
            if isinstance(sec, SymbolTableSection):
                for sym in sec.iter_symbols():
                    if sym.name in names:
                        sizes[sym.name] = int(sym["st_size"])
    return sizes


def _status(s) -> DeviceDataStatus:
    s.send(m.Status("data"))
    reply = s.recv(15)
    assert isinstance(reply, m.Status), reply
    return DeviceDataStatus.parse(reply.text)


def _wait_status(s, cond, timeout=60.0) -> DeviceDataStatus:
    deadline = time.monotonic() + timeout
    while True:
        st = _status(s)
        assert st.count <= st.capacity  # never above the budget, at any time
        if cond(st):
            return st
        assert time.monotonic() < deadline, f"the device's store did not get there: {st}"
        time.sleep(0.1)


def _train(r: int) -> m.Train:
    return m.Train(round=r, epochs=1, batch_size=8, learning_rate=0.02, momentum=0.5,
                   topk_fraction=0.1, seed=r)


def _head(bundle):
    from fltiny.export.bundle import read_bundle

    return read_bundle(bundle)[1]


def test_native_collects_windows_between_rounds_within_its_budget(har_tiny_bundle,
                                                                  tmp_path_factory):
    fw = _firmware("native", har_tiny_bundle, tmp_path_factory, max_windows=SMALL_WINDOWS)
    cap = fw.project.store.capacity
    assert cap == useful_store_windows(SMALL_WINDOWS) == 34  # 34 - n_test(34) = 24 train
    # the store's RAM in the linked ELF is what the generator sized
    sizes = _symbol_sizes(fw.elf, {"store_windows", "store_labels", "store_assembly"})
    assert sum(sizes.values()) == fw.project.store.ram_bytes == cap * (384 + 4) + 384
    n_win = 48  # the first 48 windows of device 1's recording, 5 windows a second
    full = fleet_recordings(har_tiny_bundle, 1)[0]
    steps = fw.project.store.window_len
    rec = Recording(full.device_id, full.samples[: n_win * steps], full.labels[: n_win * steps],
                    None, full.input_scale, full.input_zero_point, full.model_hash, 5 * steps)
    with start_fleet(fw.project.board, fw.elf, [rec.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        s.send(m.Global.full(1, _head(har_tiny_bundle).params))
        held, rounds = 0, []
        for r in range(1, 20):
            # wait for at least 5 new windows, then train: they must take part
            st = _wait_status(s, lambda st, h=held: st.count >= min(cap, h + 5))
            assert st.source == "store" and st.capacity == cap
            s.send(_train(r))
            d = s.recv(30)
            assert isinstance(d, m.Delta), d
            total = d.examples + d.personal_n
            assert st.count <= total <= cap  # every window held at the STATUS, maybe more
            assert d.personal_n == n_test(total) and d.examples <= SMALL_WINDOWS
            rounds.append((d.examples, d.personal_n))
            held = total
            if total == cap:
                break
        examples = [e for e, _ in rounds]
        assert len(rounds) >= 3 and examples == sorted(examples) and examples[0] < examples[-1]
        assert examples[-1] == SMALL_WINDOWS and rounds[-1][1] == n_test(cap) == 10
        # the recording runs out: the store is full, the oldest windows were dropped and counted
        end = _wait_status(s, lambda st: st.samples == n_win * steps)
        assert (end.count, end.windows, end.stored, end.rejected) == (cap, n_win, n_win, 0)
        assert end.dropped == n_win - cap and end.test == n_test(cap)
        s.send(_train(99))
        last = s.recv(30)
        assert (last.examples, last.personal_n) == (SMALL_WINDOWS, n_test(cap))


@pytest.mark.parametrize("name", ["native", "qemu-m4f", "qemu-rv32"])
def test_a_round_on_the_store_is_the_round_on_a_blob_of_its_windows(name, har_tiny_bundle,
                                                                    tmp_path_factory):
    """An unpaced recording: the device holds every window before its first round, so the
    store holds exactly the last `capacity` windows of it (the older ones dropped) and the
    host can compute the round from a blob of those windows: same bytes, same metric."""
    from fltiny.devices.replay import HostRound

    if name != "native":
        require_tools(*TOOLS[name])
    kw = {"max_windows": SMALL_WINDOWS} if name == "native" else {}
    fw = _firmware(name, har_tiny_bundle, tmp_path_factory, **kw)
    board, layout = fw.project.board, fw.project.store
    max_w = kw.get("max_windows", board.max_windows)
    rec = fleet_recordings(har_tiny_bundle, 2, samples_per_second=0)[1]  # device 2
    steps = layout.window_len
    n_win = len(rec.samples) // steps
    assert n_win > layout.capacity > 0  # the store overflows
    hr = HostRound(har_tiny_bundle)
    g = (hr.head.params + np.float32(0.01)).astype(np.float32)
    with start_fleet(board, fw.elf, [rec.encode()]) as fleet:
        dev = fleet.devices[0]
        assert dev.device_id == 2
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        st = _wait_status(s, lambda st: st.samples == len(rec.samples))
        assert (st.count, st.stored, st.dropped) == (layout.capacity, n_win, n_win - layout.capacity)
        s.send(m.Global.full(1, g))
        s.send(_train(1))
        d = s.recv(60)
        assert isinstance(d, m.Delta), d
    windows = rec.samples.reshape(n_win, steps, -1)[-layout.capacity:]
    labels = rec.labels[::steps][-layout.capacity:]
    blob = DataBlob(2, windows, labels, None, rec.input_scale, rec.input_zero_point,
                    rec.model_hash, n_test(layout.capacity))
    host = hr.run(g, blob, _train(1), max_windows=max_w)
    assert d.examples == host.examples == min(max_w, layout.capacity - blob.n_test)
    assert d.personal_n == blob.n_test > 0
    assert d.body == host.payload
    assert np.float32(d.personal_metric) == np.float32(host.personal_metric)
    assert np.float32(d.loss) == np.float32(host.mean_loss)


def test_a_board_without_blob_or_samples_says_so(har_tiny_bundle, tmp_path_factory):
    fw = _firmware("native", har_tiny_bundle, tmp_path_factory, max_windows=SMALL_WINDOWS)
    with start_fleet(fw.project.board, fw.elf, [None]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        got = [s.recv(15), s.recv(15)]
        errors = [x for x in got if isinstance(x, m.Error)]
        assert len(errors) == 1 and "no sample source" in errors[0].text
        assert _status(s).source == "none"
        s.send(_train(1))
        e = s.recv(15)
        assert isinstance(e, m.Error) and "no sample source" in e.text


SENSOR_C = r"""
/* A synthetic accelerometer for the test: readings in g, labelled by a rule. */
#include "flt_device.h"
#include "fltiny_config.h"
#include "port.h"

int flt_port_read_sample(int8_t *values, flt_sample_label_t *label)
{
    static uint32_t n;
    if (n >= 40u * FLT_APP_WINDOW_LEN) {
        return 0;
    }
    float raw[FLT_APP_SAMPLE_CHANNELS];
    for (uint32_t c = 0; c < FLT_APP_SAMPLE_CHANNELS; ++c) {
        raw[c] = (float)((n * 7u + c * 13u) % 50u) / 25.0f - 1.0f;
    }
    flt_app_quantize_sample(raw, values);
    label->label = (int32_t)((n / FLT_APP_WINDOW_LEN) % 6u);
    n++;
    return 1;
}
"""


def test_the_build_brings_the_applications_sensor(har_tiny_bundle, tmp_path_factory):
    """`--sensor FILE` (render_project(sensor=...)): the application's flt_port_read_sample
    replaces the recorded source (else the link would fail on two definitions) and its
    windows reach the store and a round, with no data file at all."""
    src = tmp_path_factory.mktemp("sensor") / "synthetic_accel.c"
    src.write_text(SENSOR_C)
    fw = _firmware("native", har_tiny_bundle, tmp_path_factory, max_windows=SMALL_WINDOWS,
                   sensor=src)
    assert (fw.project.path / "src" / "sensor" / "synthetic_accel.c").is_file()
    cap = fw.project.store.capacity
    with start_fleet(fw.project.board, fw.elf, [None]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(s.recv(15), m.Hello)
        st = _wait_status(s, lambda st: st.samples == 40 * fw.project.store.window_len)
        assert (st.source, st.windows, st.stored, st.count, st.dropped) == ("store", 40, 40, cap,
                                                                             40 - cap)
        s.send(m.Global.full(1, _head(har_tiny_bundle).params))
        s.send(_train(1))
        d = s.recv(30)
        assert isinstance(d, m.Delta) and d.examples == SMALL_WINDOWS
