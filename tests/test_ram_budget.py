"""har-tiny's device firmware in a 32 kB RAM budget on qemu-m4f (fltiny build --ram-budget,
docs/boards.md "RAM budget"): the linked ELF's static RAM plus its stack reserve is at most
32,768 B, the optional round state that does not fit is left out (the device says so), and
the firmware runs rounds whose DELTA bytes equal the host's replay of the same C, through a
GLOBAL delta, a self-check, a local-DP round and a STATUS that reports the measured stack
high-water mark."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fltiny.boards import get_board
from fltiny.build.project import (
    BUDGET_STACK_BYTES,
    STACK_HWM_BYTES,
    RoundFeatures,
    parse_ram_budget,
)
from fltiny.errors import UsageError

BUDGET = 32 * 1024


def test_parse_ram_budget():
    assert parse_ram_budget("32k") == parse_ram_budget("32K") == parse_ram_budget("32768") == BUDGET
    assert parse_ram_budget("1M") == 1 << 20 and parse_ram_budget("32kB") == BUDGET
    for bad in ("", "k", "-1", "32x", "0"):
        with pytest.raises(UsageError, match="--ram-budget"):
            parse_ram_budget(bad)


@pytest.fixture(scope="module")
def fw32(har_tiny_bundle, tmp_path_factory):
    from fltiny.build.firmware import build_firmware

    said: list[str] = []
    fw = build_firmware(get_board("qemu-m4f"), har_tiny_bundle,
                        tmp_path_factory.mktemp("fw-32k"), ram_budget=BUDGET,
                        progress=said.append)
    return fw, said


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("arm-none-eabi-gcc")
def test_har_tiny_links_in_32k(fw32):
    from fltiny.bench.memory import elf_memory

    fw, said = fw32
    mem = elf_memory(fw.elf)
    assert mem.stack_reserve == BUDGET_STACK_BYTES
    assert mem.static_ram + mem.stack_reserve <= BUDGET
    assert fw.report.ok and fw.report.ram_used == mem.static_ram + mem.stack_reserve
    assert fw.report.ram_budget == BUDGET
    # the breakdown covers the whole RAM figure
    parts = dict(fw.report.parts)
    assert sum(parts.values()) == fw.report.ram_used and parts["stack"] == BUDGET_STACK_BYTES
    assert parts["window store"] == 0 and parts["secure aggregation"] == 0
    assert fw.project.features == RoundFeatures(feedback=False, drift=False, personal=False)
    assert any("left out to fit the RAM budget" in s for s in said)
    config = (fw.project.path / "include" / "fltiny_config.h").read_text()
    assert "#define FLT_APP_FEEDBACK 0" in config and "#define FLT_APP_SECAGG 0" in config


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_32k_firmware_rounds_match_host(fw32, har_tiny_bundle):
    from fltiny.bridge import messages as m
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.data import DeviceDataStatus
    from fltiny.devices.link import socket_session
    from fltiny.devices.replay import HostRound
    from fltiny.server.downlink import Held, global_message

    fw, _ = fw32
    board = get_board("qemu-m4f")
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    hr = HostRound(har_tiny_bundle)
    flags = m.TRAIN_NO_FEEDBACK | (100 << m.TRAIN_CHECK_SHIFT)  # a self-check that passes
    g1 = (hr.head.params + np.float32(0.01)).astype(np.float32)
    with start_fleet(board, fw.elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        hello = s.recv(15)
        assert isinstance(hello, m.Hello) and hello.head_params == hr.n_params
        assert not hello.capabilities & m.CAP_SECAGG
        msg, held = global_message(g1, 1, None)
        s.send(msg)
        # error feedback was left out: a TRAIN without NO_FEEDBACK is refused, nothing trains
        s.send(m.Train(round=1, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                       topk_fraction=0.25, seed=5))
        err = s.recv(30)
        assert isinstance(err, m.Error) and "error feedback is not built in" in err.text
        state = None
        for rnd in (1, 2):
            train = m.Train(round=rnd, epochs=1, batch_size=16, learning_rate=0.02,
                            momentum=0.5, topk_fraction=0.25, seed=10 + rnd, flags=flags)
            s.send(train)
            delta = s.recv(60)
            assert isinstance(delta, m.Delta), delta
            host = hr.run(held.params, blob, train, state=state, max_windows=board.max_windows)
            assert delta.round == rnd and delta.body == host.payload  # bit for bit
            assert np.float32(delta.loss) == np.float32(host.mean_loss)
            assert np.float32(delta.personal_metric) == np.float32(host.personal_metric)
            state = host.state
            if rnd == 1:  # the next model as a GLOBAL delta (decoded in the shared region)
                g2 = (held.params + np.float32(0.003)).astype(np.float32)
                msg, held = global_message(g2, 2, Held(1, held.params))
                assert msg.kind != m.Global.full(2, g2).kind
                s.send(msg)
        # a local-DP round (the noise from the device's secret: no replay of its payload)
        s.send(m.Train(round=3, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                       topk_fraction=0.25, seed=13, ldp_clip=0.5, ldp_noise=1.25,
                       flags=m.TRAIN_NO_FEEDBACK | m.TRAIN_LOCAL_DP))
        delta = s.recv(60)
        assert isinstance(delta, m.Delta) and delta.round == 3 and delta.body, delta
        s.send(m.Status("?"))
        reply = s.recv(15)
        assert isinstance(reply, m.Status), reply
        st = DeviceDataStatus.parse(reply.text)
        assert st.source == "blob" and st.serving == "global"
        # the deepest stack use since boot stays within the measured bound the reserve is
        # built on (STACK_HWM_BYTES + STACK_MARGIN_BYTES)
        assert 0 < st.stack <= STACK_HWM_BYTES < BUDGET_STACK_BYTES, reply.text


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("arm-none-eabi-gcc")
def test_budget_too_small_is_refused_in_one_line(har_tiny_bundle, tmp_path):
    from fltiny.build.firmware import build_firmware
    from fltiny.errors import FitError

    with pytest.raises(FitError) as e:
        build_firmware(get_board("qemu-m4f"), har_tiny_bundle, tmp_path / "fw",
                       ram_budget=16 * 1024)
    text = str(e.value)
    assert "\n" not in text and "16384 B budget" in text and "--ram-budget" in text
    assert "error feedback" in text  # what was left out before giving up


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_run_with_a_ram_budget(cli, har_tiny_bundle, tmp_path, monkeypatch):
    """fltiny run --ram-budget 32k: refused in one line, before any board starts, while the run
    asks for round state the firmware leaves out (the default FedDyn, error feedback, personal
    serving); with fedavg, --no-error-feedback and --no-personal the boards' rounds replay
    byte for byte."""
    monkeypatch.setenv("FLTINY_BUILD_DIR", str(tmp_path / "b"))  # the firmware cache
    base = ("run", "--fleet", "qemu-m4f=2", "--rounds", "1", "--epochs", "1", "--ram-budget",
            "32k", "--bundle", str(har_tiny_bundle))
    code, out, err = cli(*base, "--out", str(tmp_path / "r1"))
    text = out + err
    assert code != 0 and "Traceback" not in text
    line = next(ln for ln in text.splitlines() if "leaves out" in ln)
    for what in ("error feedback", "personal serving", "FedDyn drift", "--no-error-feedback",
                 "--no-personal", "--strategy fedavg"):
        assert what in line
    assert not (tmp_path / "r1" / "run.sqlite").exists()
    code, out, err = cli(*base, "--strategy", "fedavg", "--no-error-feedback", "--no-personal",
                         "--out", str(tmp_path / "r2"))
    assert code == 0, out + err
    assert "2 device-rounds replayed, all byte-identical" in out + err


@pytest.mark.slow
@pytest.mark.cross
def test_budget_keeps_what_fits_and_checkpoints_without_feedback(har_tiny_bundle, tmp_path):
    """A native board (it checkpoints to a file) in 48 kB: error feedback (8 B a parameter)
    no longer fits, personal serving (4 B) still does and is kept; the checkpoint, whose format
    holds a residual, is written with zeros and read back after a restart; a PERSONAL round
    is served, a DRIFT round refused."""
    from fltiny.bridge import messages as m
    from fltiny.build.firmware import build_firmware
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.link import socket_session
    from fltiny.devices.replay import HostRound

    board = get_board("native")
    fw = build_firmware(board, har_tiny_bundle, tmp_path / "fw", ram_budget=48 * 1024)
    assert fw.project.features == RoundFeatures(feedback=False, drift=False, personal=True)
    assert fw.report.ram_used <= 48 * 1024
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=64)[0]
    hr = HostRound(har_tiny_bundle)
    g = (hr.head.params + np.float32(0.01)).astype(np.float32)
    flags = m.TRAIN_NO_FEEDBACK | m.TRAIN_PERSONAL
    train = m.Train(round=3, epochs=1, batch_size=8, learning_rate=0.01, momentum=0.5,
                    topk_fraction=0.2, seed=1, flags=flags)
    work = tmp_path / "run"
    work.mkdir()
    with start_fleet(board, fw.elf, [blob.encode()], workdir=work) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert s.recv(15).model_version == 0
        s.send(m.Global.full(7, g))
        s.send(m.Train(round=2, epochs=1, batch_size=8, learning_rate=0.01, seed=1,
                       topk_fraction=0.2, flags=m.TRAIN_NO_FEEDBACK | m.TRAIN_DRIFT,
                       prox_mu=0.1))
        err = s.recv(30)
        assert isinstance(err, m.Error) and "FedDyn drift state is not built in" in err.text
        s.send(train)
        delta = s.recv(60)
        assert isinstance(delta, m.Delta), delta
        host = hr.run(g, blob, train, max_windows=board.max_windows)
        assert delta.body == host.payload  # bit for bit
        deadline = time.monotonic() + 5
        while not (work / "device0.state").is_file() and time.monotonic() < deadline:
            s.poll()
        s.send(m.Status("?"))
        reply = s.recv(15)
        assert isinstance(reply, m.Status) and "serving=personal" in reply.text, reply
    with start_fleet(board, fw.elf, [blob.encode()], workdir=work) as fleet:
        dev = fleet.devices[0]
        hello = socket_session(dev.connect(), DEV_KEY, dev.device_id).recv(15)
        assert hello.model_version == 7  # the checkpoint (a zero residual) read back
