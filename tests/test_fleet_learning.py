"""A short version of bench/fleet_learning.py: the default settings on the firmware's C, 15 HAPT
fleet users one per device, against the factory model of the test bundle.

What it pins (measured over 3 factory seeds in docs/benchmarks.md "Fleet learning"): the
devices' personal accuracy (each device's served model on its own future windows, measured in
C on the device before training) rises above the factory model's; the held-out accuracy (new
users) does not diverge. The personal metric of round 1 is the factory model's (every device
still serves it), exactly as the run store records it per device.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

ROUNDS = 12
LAST = 4


@pytest.fixture(scope="module")
def host(har_tiny_bundle):
    from fltiny.devices.replay import HostRound

    return HostRound(har_tiny_bundle)


@pytest.fixture(scope="module")
def default_run(har_tiny_bundle):
    import fleet_learning as fl

    return fl.run_one(fl.CONFIGS["new"], "hapt", har_tiny_bundle, ROUNDS, 0)


def test_personal_accuracy_rises_above_the_factory_model(default_run):
    r = default_run
    assert len(r.curve_personal) == ROUNDS
    assert r.curve_personal[0] == pytest.approx(r.factory_personal)
    assert r.personal > r.factory_personal + 0.02, r.curve_personal


def test_heldout_accuracy_does_not_diverge(default_run):
    """Held-out accuracy is NOT pinned to rise: over three factory seeds the defaults end 0.5
    points below to 3.0 points above the factory model (docs/benchmarks.md), and on this test's
    briefly trained factory model FedDyn's first server step (twice the mean delta) costs
    points that the later rounds only partly win back. This bounds the loss instead."""
    r = default_run
    assert np.mean(r.curve_heldout[-LAST:]) > r.factory_heldout - 0.05, r.curve_heldout


def test_replayed_personal_metric_matches_the_round(har_tiny_bundle, host):
    """The personal metric a device reports is its served model's accuracy on its test split:
    recomputed here with the held-out evaluator's C forward on the same windows."""
    from fltiny.bridge.messages import Train
    from fltiny.devices.data import fleet_blobs
    from fltiny.run.evaluate import HoldoutEvaluator

    blob = fleet_blobs(har_tiny_bundle, 1)[0]
    train = Train(round=1, epochs=1, batch_size=16, learning_rate=0.005, momentum=0.9,
                  topk_fraction=0.1, seed=3, flags=2)
    out = host.run(host.head.params, blob, train)
    test = HoldoutEvaluator(host, blob.windows[blob.n_train:], blob.labels[blob.n_train:])
    assert out.personal_n == blob.n_test
    assert out.personal_metric == pytest.approx(test(host.head.params)["accuracy"], abs=1e-6)
    # the next round serves the local model: its metric is that model's accuracy
    nxt = host.run(host.head.params, blob, Train(round=2, epochs=1, batch_size=16,
                                                 learning_rate=0.005, topk_fraction=0.1, seed=4,
                                                 flags=2), out.state)
    assert nxt.personal_metric == pytest.approx(test(out.params)["accuracy"], abs=1e-6)
