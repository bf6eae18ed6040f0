"""``fltiny simulate --secagg`` (fltiny.sim.secagg over the runtime's secagg client per device):
the round's aggregate is exactly the plain mean of the same quantized updates, a third of the
devices dropping after MASKED still leaves every update in the sum, the masked payload is at
most twice the plain sparse payload of the same round, and the report and run store say that
secure aggregation was on; settings it cannot honour are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fltiny.errors import UsageError
from fltiny.experiment import DataSettings
from fltiny.native import secagg as sa
from fltiny.server.rounds import RoundConfig
from fltiny.server.store import RunStore
from fltiny.sim.run import SimConfig, simulate
from fltiny.sim.secagg import SecAggFleet

pytestmark = pytest.mark.slow


def test_secure_mean_is_the_plain_mean_of_the_same_quantized_updates():
    n, k, ids = 500, 60, list(range(30, 39))
    rng = np.random.default_rng(4)
    deltas = {d: rng.normal(0, 0.03, n).astype(np.float32) for d in ids}
    fleet = SecAggFleet(n, k, clip=0.05, value_bits=4, dropout=1 / 3, seed=2)
    ss, per = fleet.round(3, deltas, dict.fromkeys(ids, 100))
    assert ss.devices == tuple(ids) and len(ss.dropped_after) == 3  # a third left after MASKED
    f = ss.figures
    idx = sa.index_set(f["index_seed"], 3, n, k)
    q = sum(sa.quantize(deltas[d], idx, f["scale"], f["qmax"]).view(np.int32).astype(np.int64)
            for d in ids)
    want = np.zeros(n, np.float32)
    want[idx] = (q / (f["scale"] * len(ids))).astype(np.float32)
    assert np.array_equal(ss.mean, want)
    assert f["bits"] == 8 and all(p["masked_payload"] == 12 + k for p in per.values())


def test_simulate_with_secagg_reports_it_and_learns(har_tiny_bundle, tmp_path):
    cfg = SimConfig(clients=9, server=RoundConfig(rounds=2, secagg=True), secagg_dropout=0.34,
                    data=DataSettings(bundle=har_tiny_bundle), out=tmp_path)
    result = simulate(cfg)
    assert [m.participants for m in result.metrics] == [9, 9]
    assert all(m.privacy["secagg"] == 1.0 for m in result.metrics)
    assert all(0 < m.privacy["masked_ratio"] <= 2.0 for m in result.metrics)
    assert result.summary["secagg"]["rounds"] == 2
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert "secagg" in json.dumps(report)
    store = RunStore(tmp_path / "run.sqlite")
    try:
        rows = store.updates()
    finally:
        store.close()
    assert rows and all(r["figures"].get("secagg") is True for r in rows)
    ratios = [r["figures"]["masked_payload"] / r["figures"]["plain_payload"] for r in rows]
    assert max(ratios) <= 2.0
    assert sum(r["figures"]["dropped_after_masked"] for r in rows) == 2 * 3
    assert result.metrics[-1].evaluation["accuracy"] > 0.5


def test_settings_secagg_cannot_honour_are_refused(har_tiny_bundle, cli):
    with pytest.raises(UsageError, match="--secagg: median needs every device's own update"):
        SimConfig(strategy="median", server=RoundConfig(secagg=True),
                  data=DataSettings(bundle=har_tiny_bundle))
    with pytest.raises(UsageError, match="--secagg-dropout needs --secagg"):
        SimConfig(secagg_dropout=0.2, data=DataSettings(bundle=har_tiny_bundle))
    with pytest.raises(UsageError, match="central DP"):
        RoundConfig(secagg=True, dp_clip=1.0, dp_noise=1.0)
    code, out, err = cli("simulate", "--secagg", "--secagg-bits", "12", "--bundle",
                         str(har_tiny_bundle))
    assert code != 0 and "--secagg-bits 12: use 8, 16 or 32" in out + err
    assert "Traceback" not in out + err
    # on boards: refused before any board starts where a board's firmware leaves it out
    code, out, err = cli("run", "--secagg", "--fleet", "qemu-m4f=2,qemu-m3=1", "--rounds", "1")
    assert code != 0 and "--secagg: qemu-m3 has 64 kB of RAM or less" in out + err
    assert "Traceback" not in out + err
    code, out, err = cli("run", "--secagg-dropout", "0.3", "--rounds", "1")
    assert code != 0 and "--secagg-dropout needs --secagg" in out + err


def test_a_round_that_cannot_be_unmasked_leaves_the_model_unchanged(har_tiny_bundle, tmp_path):
    cfg = SimConfig(clients=6, server=RoundConfig(rounds=1, secagg=True), secagg_dropout=0.8,
                    data=DataSettings(bundle=har_tiny_bundle), out=tmp_path)
    result = simulate(cfg)
    m = result.metrics[0]
    assert m.participants == 0 and m.privacy["secagg"] == 0.0
    assert "quorum not met" in m.note
    store = RunStore(tmp_path / "run.sqlite")
    try:
        reasons = {r["reason"] for r in store.updates()}
        assert store.latest().params.tobytes() == store.checkpoint_of_round(0).params.tobytes()
    finally:
        store.close()
    assert len(reasons) == 1 and "shares of device" in reasons.pop()
