"""A short fault campaign (fltiny/bench/faults.py; bench/faults.py runs >= 1,000 faults): three
qemu-m4f boards behind seeded fault proxies that corrupt, drop, duplicate, reorder and stall
what they forward, cut the host's connection and reset the boards. Every accepted update
replays byte for byte (no corrupted or forged update gets in), no replay mismatch stays (the
bridge answers one with TRAIN RESET), and every board takes part again once the faults
stop."""

from __future__ import annotations

import pytest

from fltiny.bench.faults import DEFAULT_RATES, campaign, table
from fltiny.devices.faults import KINDS

pytestmark = [pytest.mark.slow, pytest.mark.cross]


def test_faults_are_survived(har_tiny_bundle, tmp_path):
    r = campaign(har_tiny_bundle, tmp_path / "build", tmp_path / "run", min_faults=200,
                 max_rounds=10, clean_rounds=2, rates=DEFAULT_RATES)
    print(table(r))
    assert r.total_faults >= 200
    assert all(r.faults[k] > 0 for k in KINDS[:4]), r.faults  # resets are rarer: not always
    # not asserted: every round meeting its quorum (bench/faults.py measures that over 1,000+
    # faults). A FULL GLOBAL on a line that disconnects during it is sometimes refused (ORDER)
    # and resent whole; after 10 refusals the device sits the round out (docs/benchmarks.md
    # "Link faults")
    assert r.quorum_met >= 1
    tail = "\n".join(r.log[-60:])
    assert r.accepted > 0 and r.accepted == r.accepted_replayed, tail  # nothing forged gets in
    # A replay mismatch is an honest update the host could not verify, so it refused it (above:
    # nothing unverified is accepted); the bridge answers with TRAIN RESET and the board is back
    # by the clean rounds (below). The states a faulty line can leave a board in are replayed
    # (docs/benchmarks.md "Link faults"); one that is not would show up here again and again.
    assert r.replay_mismatches <= 2, tail
    assert sum(r.rejected_frames.values()) > 0  # the faults reached the bridge's checks
    assert all(r.recovered), "\n".join(r.log[-40:])


def test_train_reset_starts_the_round_from_a_fresh_state(har_tiny_bundle):
    """The bridge's answer to a replay mismatch: TRAIN RESET makes the device's round the one
    of a fresh device (zero residual, the global model served), whatever state it holds."""
    from dataclasses import replace

    import numpy as np

    from fltiny.bridge import messages as m
    from fltiny.devices.data import fleet_blobs
    from fltiny.devices.replay import DeviceState, HostRound
    from fltiny.server.config import TrainParams

    hr = HostRound(har_tiny_bundle)
    blob = fleet_blobs(har_tiny_bundle, 1, max_windows=32)[0]
    g = hr.head.params.astype(np.float32)
    train = TrainParams(epochs=1).message(3, seed=7)
    rng = np.random.default_rng(0)
    odd = DeviceState(rng.normal(0, 0.01, hr.n_params).astype(np.float32),
                      np.zeros(hr.n_params, np.float32),
                      (g + rng.normal(0, 0.1, hr.n_params)).astype(np.float32))
    fresh = hr.run(g, blob, train, DeviceState.fresh(hr.n_params))
    kept = hr.run(g, blob, train, odd)
    reset = hr.run(g, blob, replace(train, flags=train.flags | m.TRAIN_RESET), odd)
    assert kept.payload != fresh.payload  # the state matters without RESET
    assert reset.payload == fresh.payload
    assert reset.personal_metric == fresh.personal_metric
    assert np.array_equal(reset.state.residual, fresh.state.residual)
