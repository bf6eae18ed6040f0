"""Gateways (hierarchical aggregation, fltiny.server.gateway): the gateways' exact
pre-aggregates give the flat run's FedAvg (within float64 rounding of the sum's order: the
float32 models agree to the last bit here), robust strategies and central DP are refused, and
`fltiny run --gateways 2` on 4 emulated boards gives the flat run's global model, every DELTA
replayed."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.errors import UsageError
from fltiny.server.gateway import (
    aggregate_gateways,
    check_gateway_settings,
    combined_mean,
    pre_aggregate,
    split_devices,
)
from fltiny.strategies import make_strategy
from fltiny.strategies.base import ClientUpdate


def _updates() -> list[ClientUpdate]:
    rng = np.random.default_rng(5)
    return [ClientUpdate(d, rng.normal(0, 0.01, 40).astype(np.float32), n)
            for d, n in zip(range(1, 8), (3, 10, 1, 7, 25, 4, 9), strict=True)]


def test_pre_aggregate_by_hand():
    # Prepare: two devices, 2 and 6 examples. Execute: the gateway's sums. Assert: 2*d1 + 6*d2
    # and 8; the top level's mean is (2*1 + 6*3) / 8 = 2.5 on the first parameter
    a = ClientUpdate(1, np.array([1.0, -2.0], np.float32), 2)
    b = ClientUpdate(2, np.array([3.0, 0.5], np.float32), 6)
    s = pre_aggregate(0, [a, b])
    np.testing.assert_array_equal(s.weighted_sum, [20.0, -1.0])
    assert s.examples == 8 and s.devices == (1, 2)
    np.testing.assert_array_equal(combined_mean([s]), [2.5, -0.125])


@pytest.mark.parametrize("name", ["fedavg", "fedprox", "fedavgm", "fedadam", "feddyn"])
def test_gateways_compute_the_flat_aggregate(name):
    g = np.linspace(-1, 1, 40).astype(np.float32)
    ups = _updates()
    flat, hier = make_strategy(name), make_strategy(name)
    for _round in range(3):  # server state (momentum, Adam moments, FedDyn's h) carried too
        w_flat = flat.aggregate(g, ups)
        w_gw = aggregate_gateways(hier, g, ups, lambda d: (d - 1) // 3)  # gateways {1-3}, ...
        np.testing.assert_array_max_ulp(w_flat, w_gw, maxulp=1)
        assert np.array_equal(w_flat, w_gw)  # in float32, the float64 order does not show here
    mean64 = flat.combine(ups)
    sums = [pre_aggregate(0, ups[:3]), pre_aggregate(1, ups[3:])]
    np.testing.assert_allclose(combined_mean(sums), mean64, rtol=1e-14, atol=1e-18)


@pytest.mark.parametrize("name", ["krum", "multi-krum", "median", "trimmed-mean"])
def test_robust_strategies_are_refused(name):
    with pytest.raises(UsageError, match=f"--gateways 2: {name} needs every device's own"):
        check_gateway_settings(2, name, private=False)
    check_gateway_settings(1, name, private=False)  # one bridge: nothing to refuse


def test_central_dp_is_refused():
    from fltiny.experiment import RoundConfig, SimConfig

    with pytest.raises(UsageError, match="central DP"):
        SimConfig(gateways=2, strategy="fedavg",
                  server=RoundConfig(dp_clip=1.0, dp_noise=1.0))


def test_split_devices_contiguous_blocks():
    assert split_devices([4, 1, 3, 2, 5], 2) == [[1, 2, 3], [4, 5]]
    with pytest.raises(UsageError, match="need 1..2 gateways"):
        split_devices([1, 2], 3)


@pytest.mark.slow
def test_simulate_with_gateways_equals_flat(har_tiny_bundle, tmp_path):
    from fltiny.experiment import DataSettings, RoundConfig, SimConfig
    from fltiny.server.store import RunStore
    from fltiny.sim.run import simulate

    finals = []
    for gw in (1, 3):
        cfg = SimConfig(clients=6, gateways=gw, strategy="fedavg", out=tmp_path / f"g{gw}",
                        max_windows=24, data=DataSettings(bundle=har_tiny_bundle),
                        server=RoundConfig(rounds=3))
        simulate(cfg)
        store = RunStore(cfg.out / "run.sqlite")
        finals.append(store.latest().params)
        if gw > 1:
            assert {u["figures"]["gateway"] for u in store.updates()} == {0, 1, 2}
        store.close()
    np.testing.assert_array_equal(finals[0], finals[1])


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc")
def test_run_two_gateways_four_boards_equals_flat(har_tiny_bundle, tmp_path_factory):
    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run
    from fltiny.server.store import RunStore

    build_root = tmp_path_factory.mktemp("gw-build")
    finals = {}
    for gw in (1, 2):
        out = tmp_path_factory.mktemp(f"gw{gw}")
        res = run(RunOptions(fleet=[("qemu-m4f", 4)], gateways=gw, strategy="fedavg",
                             server=RoundConfig(rounds=3, deadline_s=90),
                             data=DataSettings(bundle=har_tiny_bundle), out=out,
                             build_root=build_root), say=print, log=print)
        s = res.summary
        assert s["device_rounds"] == 12 and s["replayed"] == 12
        assert s["replay_identical"] == 12 and s["replay_mismatches"] == 0
        store = RunStore(out / "run.sqlite")
        finals[gw] = store.latest().params
        if gw == 2:
            by_gw = {}
            for u in store.updates():
                by_gw.setdefault(u["figures"]["gateway"], set()).add(u["device_id"])
            assert sorted(map(sorted, by_gw.values())) == [[1, 2], [3, 4]]
        store.close()
    # FedAvg through 2 gateways: the same float32 model as the flat run, bit for bit (the float64
    # sums differ only in their order of addition: docs/architecture.md "Gateways")
    np.testing.assert_array_equal(finals[1], finals[2])
