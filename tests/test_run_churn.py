"""Device churn on real emulated boards through the BridgeFleet: a late joiner, a board reset
between rounds (a fresh boot without storage), and a device that misses rounds. Every update
that is accepted must equal its replay; the host resyncs with FULL GLOBALs where needed."""

from __future__ import annotations

import hashlib
import subprocess
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")]


def _restart(dev) -> None:
    """Power-cycle one QEMU board: a new process on the same listening socket."""
    dev.proc.terminate()
    dev.proc.wait(10)
    if dev._sock is not None:
        dev._sock.close()
        dev._sock = None
    dev.proc = subprocess.Popen(dev.command, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=(dev._listener.fileno(),))
    time.sleep(0.1)


def test_late_joiner_reset_and_missed_rounds(har_tiny_bundle, tmp_path_factory):
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.build.firmware import build_firmware
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.replay import HostRound
    from fltiny.server.rounds import TrainParams
    from fltiny.strategies import make_strategy

    board = get_board("qemu-m4f")
    elf = build_firmware(board, har_tiny_bundle, tmp_path_factory.mktemp("fw-churn")).elf
    blobs = fleet_blobs(har_tiny_bundle, 3, max_windows=64)
    hr = HostRound(har_tiny_bundle)
    model_hash = hashlib.sha256((har_tiny_bundle / "backbone.tflite").read_bytes()).digest()[:8]
    train = TrainParams(epochs=1, batch_size=16, learning_rate=0.002, topk_fraction=0.05)
    fedavg = make_strategy("fedavg")
    kinds: dict[tuple[int, int], str] = {}

    with start_fleet(board, elf, [b.encode() for b in blobs]) as boards:
        eps = [Endpoint(dev.device_id, f"tcp://{dev.endpoint}", b, board.max_windows, DEV_KEY,
                        board.name)
               for dev, b in zip(boards.devices, blobs, strict=True)]
        a, b, c = (ep.device_id for ep in eps)
        bf = BridgeFleet(eps[:2], hr, model_hash=model_hash)
        params, version = hr.head.params.astype(np.float32), 0

        def round_(rnd: int, devices: list[int]) -> None:
            nonlocal params, version
            results = bf.run_round(rnd, devices, params, version, train, 0.0, 90)
            updates = [r.update for r in results if r.update is not None]
            assert len(updates) == len(devices), [r.error for r in results]
            params, version = fedavg.aggregate(params, updates), version + 1
            for lg in bf.logs:
                kinds.setdefault((lg.round, lg.device_id), lg.global_kind)

        try:
            assert bf.devices() == [a, b]
            round_(1, [a, b])
            bf.add(eps[2])  # a late joiner
            _restart(boards.devices[0])  # device a reboots between rounds
            assert bf.devices() == [a, b, c]
            round_(2, [a, b, c])
            round_(3, [a, c])  # b misses this round and the next
            round_(4, [a, c])
            round_(5, [a, b, c])
        finally:
            bf.close()

    assert kinds[(1, a)] == kinds[(1, b)] == "full"
    assert kinds[(2, a)] == "full"  # rebooted: factory state, resynced in full
    assert kinds[(2, b)] == "delta"  # one version behind: compressed GLOBAL
    assert kinds[(2, c)] == "full"  # joined late
    assert kinds[(5, b)] == "full"  # three versions behind: full resync
    assert bf.replays == 12 and bf.replay_mismatches == 0
