"""`fltiny simulate`: pinned to the firmware (the same seed gives the same delta bytes as a
qemu-m4f board), churn, partitions and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.devices.data import fleet_blobs
from fltiny.devices.replay import HostRound
from fltiny.errors import UsageError
from fltiny.experiment import DataSettings
from fltiny.server.rounds import RoundConfig, TrainParams, device_seed
from fltiny.sim.fleet import SimFleet, train_spec
from fltiny.sim.run import SimConfig, choose_partition, simulate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def host(har_tiny_bundle):
    return HostRound(har_tiny_bundle)


@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_simulated_delta_equals_qemu_m4f_board(har_tiny_bundle, host, tmp_path_factory):
    from fltiny.boards import get_board
    from fltiny.bridge import messages as m
    from fltiny.build.firmware import build_firmware
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import start_fleet
    from fltiny.devices.link import socket_session

    board = get_board("qemu-m4f")
    elf = build_firmware(board, har_tiny_bundle, tmp_path_factory.mktemp("fw-sim")).elf
    blobs = fleet_blobs(har_tiny_bundle, 2, max_windows=board.max_windows, seed=3)
    train = TrainParams(epochs=1, batch_size=8, learning_rate=0.01, momentum=0.9,
                        topk_fraction=0.1, seed=42)
    round_, mu = 1, 0.01
    global_params = (host.head.params * np.float32(1.01)).astype(np.float32)

    fleet = SimFleet(host, blobs, keep_payloads=True)
    fleet.run_round(round_, [blobs[1].device_id], global_params, 1, train, mu, 60.0)
    simulated = fleet.payloads[(round_, blobs[1].device_id)]

    with start_fleet(board, elf, [blobs[1].encode()]) as boards:
        dev = boards.devices[0]
        session = socket_session(dev.connect(), DEV_KEY, dev.device_id)
        assert isinstance(session.recv(15), m.Hello)
        spec = train_spec(train, round_, dev.device_id, mu)
        session.send(m.Global.full(1, global_params))
        session.send(spec)  # the TRAIN the simulated device got, flags (value width) included
        delta = session.recv(60)
    assert isinstance(delta, m.Delta), delta
    assert delta.body == simulated


def test_simulation_learns_the_fleet_data(har_tiny_bundle, host, tmp_path):
    """FedAvg over the devices lowers the global head's loss on the devices' own data (held-out
    users are reported, but a few rounds of head-only training need not improve them)."""
    from fltiny.run.evaluate import HoldoutEvaluator
    from fltiny.server.rounds import RoundConfig, run_rounds
    from fltiny.server.store import RunStore
    from fltiny.strategies import make_strategy

    blobs = fleet_blobs(har_tiny_bundle, 15, max_windows=64)
    windows = np.concatenate([b.windows[:b.n_train] for b in blobs])  # what they train on
    labels = np.concatenate([b.labels[:b.n_train] for b in blobs])
    on_fleet = HoldoutEvaluator(host, windows, labels)
    fleet = SimFleet(host, blobs)
    metrics = run_rounds(fleet, make_strategy("fedavg"), RunStore(tmp_path / "r.sqlite"),
                         RoundConfig(rounds=6), host.head.params.astype(np.float32), on_fleet)
    assert [m.participants for m in metrics] == [15] * 6
    losses = [m.evaluation["loss"] for m in metrics]
    assert losses[-1] < on_fleet(host.head.params)["loss"]
    # compressed: once the devices hold the model (round 1 adds the HELLO and the ACKs of the
    # full GLOBAL), a device-round's wire bytes up, frames and ACKs included, are far below
    # the dense float32 head delta
    assert metrics[-1].bytes_up / 15 < 4 * host.n_params / 10


def test_simulate_end_to_end(har_tiny_bundle, host, tmp_path):
    cfg = SimConfig(clients=15, server=RoundConfig(rounds=2),
                    data=DataSettings(bundle=har_tiny_bundle), out=tmp_path)
    result = simulate(cfg, host=host)
    assert result.partition == "natural" and len(result.metrics) == 2
    assert 0.0 < result.metrics[-1].evaluation["accuracy"] <= 1.0


def test_churn_drops_devices(har_tiny_bundle, host, tmp_path):
    cfg = SimConfig(clients=30, server=RoundConfig(rounds=3), churn=0.3, max_windows=20,
                    data=DataSettings(bundle=har_tiny_bundle, partition="iid"), out=tmp_path)
    result = simulate(cfg, host=host)
    seen = [m.participants for m in result.metrics]
    assert all(10 <= s < 30 for s in seen), seen


def test_error_feedback_residual_is_carried(host, har_tiny_bundle):
    """residual = (local - global) minus what was sent, kept for the device's next round."""
    from oracles import payload as pl

    blobs = fleet_blobs(har_tiny_bundle, 1, max_windows=32)
    dev = blobs[0].device_id
    fleet = SimFleet(host, blobs)
    g = host.head.params.astype(np.float32)
    train = TrainParams(topk_fraction=0.05)
    fleet.run_round(1, [dev], g, 0, train, 0.0, 60)
    r1 = fleet.states[dev].residual
    out = host.run(g, blobs[0], train_spec(train, 1, dev, 0.0))
    sent = pl.decode(out.payload, n_max=g.size, k_max=g.size, scales_max=g.size)
    expected = (out.params - g).astype(np.float32)
    expected[sent.indices] -= sent.sent_values()
    np.testing.assert_array_equal(r1, expected)
    assert np.count_nonzero(r1) > sent.k  # more is held back than was sent
    fleet.run_round(2, [dev], g, 1, train, 0.0, 60)
    assert not np.array_equal(fleet.states[dev].residual, r1)


def test_device_seeds_differ_and_repeat():
    assert device_seed(0, 1, 1) == device_seed(0, 1, 1)
    assert len({device_seed(0, r, d) for r in range(5) for d in range(20)}) == 100
    assert all(0 <= device_seed(9, r, 3) < 2**32 for r in range(10))


def test_partition_choice():
    assert choose_partition("auto", 15, 15) == "natural"
    assert choose_partition("auto", 1000, 15) == "iid"
    with pytest.raises(UsageError, match="natural partition has 15"):
        choose_partition("natural", 16, 15)


def test_cli_simulate(cli, har_tiny_bundle, tmp_path):
    code, out, err = cli("simulate", "--clients", "4", "--rounds", "2", "--out", tmp_path,
                         "--bundle", har_tiny_bundle)
    assert code == 0, err
    assert "held-out accuracy: initial" in out and (tmp_path / "run.sqlite").is_file()
    code, _, err = cli("simulate", "--churn", "1.5")
    assert code == 2 and "--churn" in err


def test_no_error_feedback_travels_in_train_and_keeps_no_residual(host, har_tiny_bundle):
    """--no-error-feedback is a TRAIN flag (NO_FEEDBACK), so a board and the simulator do the
    same: the device's C ignores and zeroes its residual."""
    from fltiny.bridge.messages import TRAIN_NO_FEEDBACK

    blobs = fleet_blobs(har_tiny_bundle, 1, max_windows=32)
    dev = blobs[0].device_id
    train = TrainParams(topk_fraction=0.05, error_feedback=False)
    assert train_spec(train, 1, dev, 0.0).flags & TRAIN_NO_FEEDBACK
    assert not TrainParams().message(1, 0).flags & TRAIN_NO_FEEDBACK
    fleet = SimFleet(host, blobs)
    g = host.head.params.astype(np.float32)
    fleet.run_round(1, [dev], g, 0, train, 0.0, 60)
    assert not fleet.states[dev].residual.any()
    fleet.run_round(1, [dev], g, 0, TrainParams(topk_fraction=0.05), 0.0, 60)
    assert fleet.states[dev].residual.any()
