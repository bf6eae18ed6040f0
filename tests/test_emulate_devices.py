"""Emulated boards boot, say HELLO over their serial socket / TCP, and run a round whose DELTA
bytes equal the host's replay of the same C (fltiny.devices.replay); fleets stop cleanly."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fltiny.boards import get_board
from fltiny.bridge import messages as m
from fltiny.build.firmware import build_firmware
from fltiny.build.project import DEV_KEY
from fltiny.devices import fleet_blobs, start_fleet
from fltiny.devices.link import socket_session

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "qemu-system-riscv32", "arm-none-eabi-gcc",
                                "riscv64-unknown-elf-gcc")]

_ELF: dict[str, object] = {}


def firmware(board, bundle, tmp_path_factory):
    if board.name not in _ELF:
        out = tmp_path_factory.getbasetemp() / "fw" / board.name
        _ELF[board.name] = build_firmware(board, bundle, out).elf
    return _ELF[board.name]


def _qemu_children() -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize("name", ["qemu-m3", "qemu-m4f", "qemu-rv32", "native"])
def test_hello_and_round_match_host(name, har_tiny_bundle, tmp_path_factory):
    from fltiny.devices.replay import HostRound

    board = get_board(name)
    elf = firmware(board, har_tiny_bundle, tmp_path_factory)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=board.max_windows)[0]
    backbone = (har_tiny_bundle / "backbone.tflite").read_bytes()
    hr = HostRound(har_tiny_bundle)
    with start_fleet(board, elf, [blob.encode()]) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        hello = s.recv(15)
        assert isinstance(hello, m.Hello)
        assert hello.name == name
        assert hello.model_hash == hashlib.sha256(backbone).digest()[:8]
        assert hello.head_params == hr.n_params and hello.model_version == 0
        # one round: a FULL global (perturbed, so the device cannot be using its factory head)
        g = (hr.head.params + np.float32(0.01)).astype(np.float32)
        train = m.Train(round=1, epochs=1, batch_size=16, learning_rate=0.02, momentum=0.5,
                        topk_fraction=0.05, seed=11)
        s.send(m.Global.full(1, g))
        s.send(train)
        delta = s.recv(60)
        assert isinstance(delta, m.Delta), delta
        n = min(blob.n_train, board.max_windows)
        host = hr.run(g, blob, train, max_windows=board.max_windows)
        assert delta.round == 1 and delta.base_version == 1 and delta.examples == n
        assert delta.body == host.payload  # bit for bit
        assert np.float32(delta.loss) == np.float32(host.mean_loss)
        # the personal metric: the served (global) model on the personal test split, in C
        assert delta.personal_n == blob.n_test > 0
        assert np.float32(delta.personal_metric) == np.float32(host.personal_metric)


def test_fleet_of_two_and_clean_stop(har_tiny_bundle, tmp_path_factory):
    board = get_board("qemu-m4f")
    elf = firmware(board, har_tiny_bundle, tmp_path_factory)
    blobs = [b.encode() for b in fleet_blobs(har_tiny_bundle, 2, max_windows=board.max_windows)]
    fleet = start_fleet(board, elf, blobs)
    pids = [d.proc.pid for d in fleet.devices]
    try:
        assert len({d.endpoint for d in fleet.devices}) == 2
        for dev, want_id in zip(fleet.devices, (1, 2), strict=True):
            assert dev.device_id == want_id
            hello = socket_session(dev.connect(), DEV_KEY, dev.device_id).recv(15)
            assert hello.name == "qemu-m4f"
    finally:
        fleet.stop()
    assert all(d.proc.poll() is not None for d in fleet.devices)
    assert not set(pids) & set(_qemu_children())


def test_native_checkpoint_survives_restart(har_tiny_bundle, tmp_path_factory, tmp_path):
    """The native board checkpoints (model version, round, residual) to its state file after
    the DELTA is acknowledged; a restarted process says HELLO with that model version."""
    board = get_board("native")
    elf = firmware(board, har_tiny_bundle, tmp_path_factory)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=64)[0].encode()
    from fltiny.export.bundle import read_bundle

    _, head, _ = read_bundle(har_tiny_bundle)
    with start_fleet(board, elf, [blob], workdir=tmp_path) as fleet:
        dev = fleet.devices[0]
        s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert s.recv(15).model_version == 0
        s.send(m.Global.full(7, head.params))
        s.send(m.Train(round=3, epochs=1, batch_size=8, learning_rate=0.01, topk_count=10, seed=1))
        assert isinstance(s.recv(30), m.Delta)
        deadline = time.monotonic() + 5
        while not (tmp_path / "device0.state").is_file() and time.monotonic() < deadline:
            s.poll()
    with start_fleet(board, elf, [blob], workdir=tmp_path) as fleet:
        dev = fleet.devices[0]
        hello = socket_session(dev.connect(), DEV_KEY, dev.device_id).recv(15)
        assert hello.model_version == 7


def test_emulate_command_prints_endpoints_and_stops(har_tiny_bundle, tmp_path_factory):
    board = get_board("qemu-m4f")
    firmware(board, har_tiny_bundle, tmp_path_factory)  # warm the default build dir's sources
    out = tmp_path_factory.getbasetemp() / "fw" / "emulate"
    env = dict(os.environ, FLTINY_BUILD_DIR=str(out))
    proc = subprocess.run([sys.executable, "-m", "fltiny.cli", "emulate", "--board", "qemu-m4f",
                           "-n", "2", "--bundle", str(har_tiny_bundle), "--seconds", "1"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("qemu-m4f[")]
    assert len(lines) == 2 and all("127.0.0.1:" in ln for ln in lines)
    assert "stopped" in proc.stdout


def test_qemu_reset_restarts_clean_and_resyncs(har_tiny_bundle, tmp_path_factory):
    """QEMU boards have no persistent storage: after a reset (a new QEMU process) the board says
    HELLO with model version 0, and the FULL GLOBAL + the same TRAIN give the same DELTA bytes."""
    from fltiny.export.bundle import read_bundle

    board = get_board("qemu-m4f")
    elf = firmware(board, har_tiny_bundle, tmp_path_factory)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=32)[0].encode()
    _, head, _ = read_bundle(har_tiny_bundle)
    train = m.Train(round=2, epochs=2, batch_size=8, learning_rate=0.01, topk_count=20, seed=5)
    bodies = []
    for _ in range(2):
        with start_fleet(board, elf, [blob]) as fleet:
            dev = fleet.devices[0]
            s = socket_session(dev.connect(), DEV_KEY, dev.device_id)
            assert s.recv(15).model_version == 0
            s.send(m.Global.full(4, head.params))
            s.send(train)
            bodies.append(s.recv(30).body)
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_emulate_stops_every_board_on_signal(har_tiny_bundle, tmp_path_factory, sig):
    board = get_board("qemu-m4f")
    firmware(board, har_tiny_bundle, tmp_path_factory)
    env = dict(os.environ, FLTINY_BUILD_DIR=str(tmp_path_factory.getbasetemp() / "fw" / "emulate"))
    proc = subprocess.Popen([sys.executable, "-m", "fltiny.cli", "emulate", "--board", "qemu-m4f",
                             "-n", "2", "--bundle", str(har_tiny_bundle)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        while len(lines) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("qemu-m4f["):
                lines.append(line)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2
        proc.send_signal(sig)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{c}") for c in children):
        time.sleep(0.1)
    assert not [c for c in children if os.path.exists(f"/proc/{c}")]
