"""Scale on one machine: fleets of thousands of devices on data that has them (thermostat
homes generated per device, HAPT users' windows dealt into device streams), and a smaller
run of `fltiny simulate` at that scale (the 10,000 x 10 figures: docs/benchmarks.md)."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.data import load_dataset, thermostat
from fltiny.data.partition import MIN_STREAM, natural, streams
from fltiny.experiment import choose_partition


def test_thermostat_fleet_grows_and_keeps_factory_and_holdout():
    small, big = thermostat.load(), thermostat.load(fleet=2000)
    assert big.scenario.factory == small.scenario.factory
    assert big.scenario.holdout == small.scenario.holdout
    assert len(big.scenario.fleet) == 2000 and big.scenario.fleet[:25] == small.scenario.fleet
    assert not set(big.scenario.fleet) & set(big.scenario.holdout)
    # a home's log depends only on (seed, home): the default 40 homes are the same in both
    for home in (1, 20, 38):
        np.testing.assert_array_equal(small.x[small.groups == home], big.x[big.groups == home])
    counts = np.bincount(big.groups)[list(big.scenario.fleet)]
    assert counts.min() == counts.max() == 21 * 24  # every device's home has its 3 weeks
    means = [big.y[big.groups == h].mean() for h in big.scenario.fleet[:200]]
    assert np.ptp(means) > 2.0  # still non-IID: homes differ by degrees


def test_natural_partition_one_home_per_device_at_scale():
    ds = load_dataset("thermostat", fleet=2000)
    fleet = ds.fleet()
    parts = natural(fleet.groups, ds.scenario.fleet)
    assert len(parts) == 2000
    for home, idx in zip(ds.scenario.fleet[::97], parts[::97], strict=True):
        assert set(fleet.groups[idx].tolist()) == {home} and np.all(np.diff(idx) > 0)


def test_streams_are_contiguous_stretches_of_one_user():
    hapt = load_dataset("hapt")
    fleet = hapt.fleet()
    users = hapt.scenario.fleet
    parts = streams(fleet.groups, users, 10_000)
    assert len(parts) == 10_000
    assert all(len(p) == MIN_STREAM for p in parts)  # 5,198 windows // 10,000 < 16
    per_user = natural(fleet.groups, users)
    for i in (0, 1, 14, 15, 4_321, 9_999):
        p, own = parts[i], per_user[i % len(users)]
        assert set(fleet.groups[p].tolist()) == {users[i % len(users)]}
        start = int(np.flatnonzero(own == p[0])[0])
        np.testing.assert_array_equal(p, own[start:start + len(p)])  # contiguous in time
    # a user's devices spread over the whole recording: first and last stretch at its ends
    mine = parts[0::len(users)]
    assert mine[0][0] == per_user[0][0] and mine[-1][-1] == per_user[0][-1]
    # as many devices as users: the natural partition
    for a, b in zip(streams(fleet.groups, users, len(users)), per_user, strict=True):
        np.testing.assert_array_equal(a, b)


def test_auto_partition_beyond_the_windows_is_streams():
    assert choose_partition("auto", 2000, 15, 5198) == "iid"
    assert choose_partition("auto", 10_000, 15, 5198) == "streams"
    assert choose_partition("auto", 10_000, 10_000, 5198) == "natural"


@pytest.mark.slow
def test_simulate_2000_devices_two_rounds(har_tiny_bundle, tmp_path):
    """2,000 HAPT devices (streams: auto beyond two windows each would be iid, so ask for it)
    for 2 rounds with a tenth of them each round: every device has data, both rounds complete
    and the held-out accuracy is reported."""
    from fltiny.devices.data import fleet_blobs
    from fltiny.experiment import DataSettings, RoundConfig, SimConfig
    from fltiny.sim.run import simulate

    blobs = fleet_blobs(har_tiny_bundle, 2000, scheme="streams")
    assert len(blobs) == 2000 and len({b.device_id for b in blobs}) == 2000
    assert all(b.n_train >= 1 and b.n_test >= 1 for b in blobs)
    cfg = SimConfig(clients=2000, out=tmp_path,
                    data=DataSettings(bundle=har_tiny_bundle, partition="streams"),
                    server=RoundConfig(rounds=2, fraction=0.1))
    result = simulate(cfg)
    assert result.partition == "streams"
    assert [m.participants + m.rejected for m in result.metrics] == [200, 200]
    assert all(m.participants > 0 and not m.note for m in result.metrics)
    assert 0.0 < result.final["accuracy"] <= 1.0 and "accuracy" in result.initial


@pytest.mark.slow
def test_simulate_10000_devices_at_full_participation(har_tiny_bundle, tmp_path):
    """The issue's scale: 10,000 HAPT devices, every one in every round (2 rounds here; the
    10-round figures are bench/sim_scale.py's), over worker processes on the firmware's C:
    every device answers, nothing is rejected, the held-out accuracy is reported, and the
    devices' state lives in the workers (the parent stays small)."""
    from fltiny.experiment import DataSettings, RoundConfig, SimConfig
    from fltiny.sim.run import simulate

    said: list[str] = []
    cfg = SimConfig(clients=10_000, out=tmp_path, data=DataSettings(bundle=har_tiny_bundle),
                    server=RoundConfig(rounds=2))
    result = simulate(cfg, log=said.append)
    assert result.partition == "streams"
    assert any("10000 devices over" in s and "worker processes" in s for s in said)
    assert [(m.participants, m.rejected) for m in result.metrics] == [(10_000, 0)] * 2
    assert 0.0 < result.final["accuracy"] <= 1.0 and "accuracy" in result.initial
    assert all(m.bytes_up > 0 and m.bytes_down > 0 for m in result.metrics)
