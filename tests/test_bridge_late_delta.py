"""A DELTA that arrives after the host's round deadline on a real emulated board: the host
ignores it (stale), but the link acknowledges it, and the device commits its round state at
that acknowledgement (firmware/app/flt_device.c). The host's replay of the next round must
start from that committed state, which it learns by replaying the late round: no replay
mismatch, no TRAIN RESET, the next update accepted byte for byte."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")]


def test_a_late_delta_committed_by_the_device_replays_in_the_next_round(har_tiny_bundle,
                                                                         tmp_path):
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.build.firmware import build_firmware
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.replay import HostRound
    from fltiny.native.errors import DeliveryError
    from fltiny.server.config import TrainParams

    board = get_board("qemu-m4f")
    elf = build_firmware(board, har_tiny_bundle, tmp_path / "fw").elf
    blobs = fleet_blobs(har_tiny_bundle, 1, max_windows=64)
    hr = HostRound(har_tiny_bundle)
    mhash = hashlib.sha256((har_tiny_bundle / "backbone.tflite").read_bytes()).digest()[:8]
    quick = TrainParams(epochs=1, batch_size=16, learning_rate=0.002, topk_fraction=0.05)
    slow = TrainParams(epochs=255, batch_size=16, learning_rate=0.002, topk_fraction=0.05)
    log: list[str] = []
    with start_fleet(board, elf, [blobs[0].encode()]) as fleet:
        dev = fleet.devices[0]
        ep = Endpoint(dev.device_id, f"tcp://{dev.endpoint}", blobs[0], board.max_windows,
                      DEV_KEY, board.name)
        bf = BridgeFleet([ep], hr, model_hash=mhash, log=log.append)
        g = hr.head.params.astype(np.float32)
        try:
            (r1,) = bf.run_round(1, [dev.device_id], g, 0, quick, 0.0, 90)
            assert r1.update is not None, r1.error
            # round 2 trains far longer than its deadline: the TRAIN is delivered, the DELTA late
            (r2,) = bf.run_round(2, [dev.device_id], g, 0, slow, 0.0, 1.5)
            assert r2.update is None and "no DELTA before the round deadline" in r2.error, r2.error
            # the STATUS answer comes after the late DELTA, which the host's link acknowledges
            # (while the board trains it answers nothing: its loop is busy)
            end = time.monotonic() + 120
            while True:
                try:
                    bf.status(dev.device_id, wait_s=10)
                    break
                except (DeliveryError, TimeoutError):
                    assert time.monotonic() < end, "the board never answered STATUS"
            (r3,) = bf.run_round(3, [dev.device_id], g, 0, quick, 0.0, 90)
        finally:
            bf.close()
    assert r3.update is not None, r3.error
    assert bf.replay_mismatches == 0
    assert any("had committed round 2" in line for line in log), log
