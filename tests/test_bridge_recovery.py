"""The bridge's recovery from what a faulty link does to one real emulated board (qemu-m4f):

- a DELTA that arrives after the host's round deadline: the host ignores it (stale), but the
  link acknowledges it and the device commits its round state at that acknowledgement
  (firmware/app/flt_device.c). The host's replay of the next round must start from that state,
  which it learns by replaying the late round: no replay mismatch, the next update accepted;
- a reboot the host notices only after it sent the board frames of the old session (which the
  rebooted board accepted): the host's new session must not reuse sequence numbers the board
  has seen (its receiver refuses them as REPLAY), or the board sits every round out."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")]


@pytest.fixture(scope="module")
def board_elf(har_tiny_bundle, tmp_path_factory):
    from fltiny.boards import get_board
    from fltiny.build.firmware import build_firmware

    board = get_board("qemu-m4f")
    return board, build_firmware(board, har_tiny_bundle, tmp_path_factory.mktemp("fw")).elf


def _train(epochs: int):
    from fltiny.server.config import TrainParams

    return TrainParams(epochs=epochs, batch_size=16, learning_rate=0.002, topk_fraction=0.05)


class _OneBoard:
    """One qemu-m4f board behind a fault proxy that injects nothing unless asked (a reset)."""

    def __init__(self, bundle, board, elf) -> None:
        from fltiny.bridge.fleet import BridgeFleet, Endpoint
        from fltiny.build.project import DEV_KEY
        from fltiny.devices import fleet_blobs, start_fleet
        from fltiny.devices.faults import FaultProxy, FaultRates
        from fltiny.devices.replay import HostRound

        blob = fleet_blobs(bundle, 1, max_windows=64)[0]
        self.hr = HostRound(bundle)
        mhash = hashlib.sha256((bundle / "backbone.tflite").read_bytes()).digest()[:8]
        self.log: list[str] = []
        self._fleet_cm = start_fleet(board, elf, [blob.encode()])
        self.fleet = self._fleet_cm.__enter__()
        self.dev = self.fleet.devices[0]
        self.proxy = FaultProxy((self.dev.host, self.dev.port), FaultRates(), seed=0,
                                reset_board=lambda: self.fleet.restart(self.dev))
        ep = Endpoint(self.dev.device_id, self.proxy.url, blob, board.max_windows, DEV_KEY,
                      board.name)
        self.bf = BridgeFleet([ep], self.hr, model_hash=mhash, log=self.log.append)

    def round(self, rnd: int, params, version: int, epochs: int = 1, deadline: float = 90):
        (r,) = self.bf.run_round(rnd, [self.dev.device_id], params, version, _train(epochs),
                                 0.0, deadline)
        return r

    def close(self) -> None:
        self.bf.close()
        self.proxy.close()
        self._fleet_cm.__exit__(None, None, None)


@pytest.fixture
def one_board(har_tiny_bundle, board_elf):
    b = _OneBoard(har_tiny_bundle, *board_elf)
    yield b
    b.close()


def _late_round(b, rnd: int, g) -> None:
    """A round that trains far longer than its deadline: the TRAIN is delivered, the DELTA
    late; then a STATUS, whose answer comes after the late DELTA, which the host's link
    acknowledges (while the board trains it answers nothing: its loop is busy)."""
    from fltiny.native.errors import DeliveryError

    r = b.round(rnd, g, 0, epochs=255, deadline=1.5)
    assert r.update is None and "no DELTA before the round deadline" in r.error, r.error
    end = time.monotonic() + 120
    while True:
        try:
            b.bf.status(b.dev.device_id, wait_s=10)
            return
        except (DeliveryError, TimeoutError):
            assert time.monotonic() < end, "the board never answered STATUS"


@pytest.mark.parametrize("late", [1, 2], ids=["one-late-round", "two-late-rounds"])
def test_late_deltas_committed_by_the_device_replay_in_the_next_round(one_board, late):
    b = one_board
    g = b.hr.head.params.astype(np.float32)
    r1 = b.round(1, g, 0)
    assert r1.update is not None, r1.error
    for rnd in range(2, 2 + late):
        _late_round(b, rnd, g)
    r = b.round(2 + late, g, 0)
    assert r.update is not None, r.error
    assert b.bf.replay_mismatches == 0
    rounds = ", ".join(str(i) for i in range(2, 2 + late))
    assert any(f"had committed round(s) {rounds}," in line for line in b.log), b.log


def test_a_reboot_noticed_late_does_not_cost_the_board_its_rounds(one_board):
    b = one_board
    g = b.hr.head.params.astype(np.float32)
    r1 = b.round(1, g, 0)
    assert r1.update is not None, r1.error
    for _ in range(150):  # a session in use for a while: its sequence numbers are well past 1
        b.bf.status(b.dev.device_id)
    # a reboot (factory state, its receiver's sequence numbers at zero) behind a link that
    # stays up: the host learns of it only from the fresh HELLO, which waits on the line
    b.proxy.reset_now()
    time.sleep(0.5)
    # round 2's first frames go out on the old session before the HELLO is read: the board
    # accepts them (any number above zero), then the host learns of the reboot and resyncs
    g2 = (g + np.float32(0.01)).astype(np.float32)
    r2 = b.round(2, g2, 1)
    assert r2.update is not None, (r2.error, b.log[-20:])
    assert any("rebooted" in line for line in b.log), b.log
    r3 = b.round(3, g2, 1)
    assert r3.update is not None, r3.error
    assert b.bf.replay_mismatches == 0
