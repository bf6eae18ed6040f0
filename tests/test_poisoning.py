"""Byzantine devices in the simulator (fltiny/sim/byzantine.py, fltiny/sim/adversary.py) and the
defenses against them: a short version of bench/poisoning.py.

What it pins: each attack really changes what a compromised device sends, and only that (the
honest devices' payloads are byte-identical to a clean round's; a flipped sign decodes to
exactly minus the honest update); the attacked payload is one the aggregator's C decoder takes;
model replacement wrecks FedAvg within a few rounds while validation + reputation and the
trimmed mean hold; the acceptance check the bridge applies (--anomaly-threshold) rejects the
x10 updates and only those, through the round loop both fleets share.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fltiny.devices.data import fleet_blobs
from fltiny.devices.replay import HostRound
from fltiny.errors import UsageError
from fltiny.experiment import DataSettings, RoundConfig, SimConfig, TrainParams
from fltiny.native.delta import PayloadDecoder
from fltiny.server.store import RunStore
from fltiny.sim.adversary import Adversary, flip_labels
from fltiny.sim.byzantine import byzantine_count, byzantine_devices
from fltiny.sim.fleet import SimFleet
from fltiny.sim.run import simulate

TRAIN = TrainParams(epochs=2)
MU = 0.01
BYZ = frozenset({2})


@pytest.fixture(scope="module")
def host(har_tiny_bundle):
    return HostRound(har_tiny_bundle)


@pytest.fixture(scope="module")
def blobs(har_tiny_bundle):
    return fleet_blobs(har_tiny_bundle, 5, max_windows=64)


def _round(host, blobs, attack: str | None) -> dict[int, tuple[np.ndarray, bytes]]:
    """One round of 5 devices from the factory model: device id -> (decoded delta, payload)."""
    adv = None if attack is None else Adversary(attack, BYZ, host.n_params,
                                                classes=host.head.n_out)
    fleet = SimFleet(host, blobs, adversary=adv, keep_payloads=True)
    ids = [b.device_id for b in blobs]
    train = replace(TRAIN, mu=MU, drift=True)
    out = fleet.run_round(1, ids, host.head.params.astype(np.float32), 0, train, MU, 60.0)
    return {r.device_id: (r.update.delta, fleet.payloads[(1, r.device_id)]) for r in out}


@pytest.fixture(scope="module")
def honest(host, blobs):
    return _round(host, blobs, None)


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["sign-flip", "scale10", "noise", "label-flip",
                                    "model-replacement"])
def test_attack_changes_only_the_byzantine_payload(host, blobs, honest, attack):
    attacked = _round(host, blobs, attack)
    for dev, (delta, payload) in attacked.items():
        if dev not in BYZ:
            assert payload == honest[dev][1], dev  # honest devices: byte-identical
            continue
        mine, ref = delta.astype(np.float64), honest[dev][0].astype(np.float64)
        # the attacked payload decodes with the aggregator's C decoder, to what was sent
        assert np.array_equal(PayloadDecoder(host.n_params).decode_dense(payload), delta)
        assert payload != honest[dev][1]
        if attack == "sign-flip":
            assert np.array_equal(delta, -honest[dev][0])
            assert len(payload) == len(honest[dev][1])
        elif attack == "scale10":
            np.testing.assert_allclose(mine, 10 * ref, rtol=1e-6)
        elif attack == "noise":  # the honest support and norm, not its direction
            assert set(np.flatnonzero(mine)) <= set(np.flatnonzero(ref))
            assert np.linalg.norm(mine) == pytest.approx(np.linalg.norm(ref), rel=0.2)
            assert abs(mine @ ref) / (np.linalg.norm(mine) * np.linalg.norm(ref)) < 0.5
        elif attack == "label-flip":  # an update of the same kind, trained on other labels
            assert np.count_nonzero(mine) == np.count_nonzero(ref)
            assert not np.allclose(mine, ref)
        else:  # model replacement: boosted x5 (5 devices, 1 Byzantine) towards its target
            assert np.linalg.norm(mine) > 3 * np.linalg.norm(ref)


@pytest.mark.slow
def test_flipped_labels(blobs):
    b = blobs[0]
    flipped = flip_labels(b, 6)
    assert np.array_equal(flipped.labels, 5 - b.labels)
    assert np.array_equal(flipped.windows, b.windows) and flipped.n_test == b.n_test


def test_silent_devices_send_nothing_and_the_others_are_unchanged(host, blobs, honest):
    adv = Adversary("silent", BYZ, host.n_params)
    fleet = SimFleet(host, blobs, adversary=adv, keep_payloads=True)
    ids = [b.device_id for b in blobs]
    out = fleet.run_round(1, ids, host.head.params.astype(np.float32), 0,
                          replace(TRAIN, mu=MU, drift=True), MU, 60.0)
    for r in out:
        if r.device_id in BYZ:
            assert r.update is None and "silent" in r.error and r.figures == {"byzantine": True}
        else:
            assert fleet.payloads[(1, r.device_id)] == honest[r.device_id][1]
    assert {r.device_id for r in out if r.update is None} == set(BYZ) & set(ids)


def test_byzantine_choice_is_seeded_and_counted():
    ids = list(range(1, 16))
    assert byzantine_count(0.2, 15) == 3 and byzantine_count(0.0, 15) == 0
    a = byzantine_devices(ids, 0.2, seed=0)
    assert len(a) == 3 and a <= set(ids)
    assert byzantine_devices(ids, 0.2, seed=0) == a
    assert any(byzantine_devices(ids, 0.2, seed=s) != a for s in (1, 2, 3))
    with pytest.raises(UsageError, match="is no device"):
        byzantine_count(0.01, 15)
    with pytest.raises(UsageError, match="all 4 devices"):
        byzantine_count(0.9, 4)


ROUNDS = 3


def _sim(bundle: Path, host, tmp: Path, strategy: str, attack: str | None,
         options: tuple = (), anomaly: float = float("inf")):
    cfg = SimConfig(clients=15, strategy=strategy, strategy_options=options,
                    data=DataSettings(dataset="hapt", bundle=bundle, partition="natural"),
                    server=RoundConfig(rounds=ROUNDS, train=TRAIN, anomaly_threshold=anomaly),
                    byzantine=0.0 if attack is None else 0.2, attack=attack, max_windows=64,
                    out=tmp / f"{strategy}-{attack}-{anomaly}")
    res = simulate(cfg, host=host)
    return res, float(np.mean([r["accuracy"] for r in res.rounds[1:]]))


@pytest.mark.slow
def test_model_replacement_wrecks_fedavg_and_robust_rules_hold(har_tiny_bundle, host, tmp_path):
    _, clean = _sim(har_tiny_bundle, host, tmp_path, "fedavg", None)
    _, poisoned = _sim(har_tiny_bundle, host, tmp_path, "fedavg", "model-replacement")
    assert poisoned < clean - 0.10, (clean, poisoned)  # the attack is applied, and it bites
    for strategy, options in [("reputation", ()), ("trimmed-mean", (("beta", 0.2),))]:
        _, base = _sim(har_tiny_bundle, host, tmp_path, strategy, None, options)
        _, held = _sim(har_tiny_bundle, host, tmp_path, strategy, "model-replacement", options)
        assert held > base - 0.03, (strategy, base, held)
        assert held > poisoned + 0.05, (strategy, poisoned, held)


@pytest.mark.slow
def test_anomaly_check_rejects_the_scaled_updates_only(har_tiny_bundle, host, tmp_path):
    """The simulator's updates go through the same acceptance checks as the bridge's
    (fltiny.server.validate through run_rounds): x10 updates stand out by norm."""
    res, _ = _sim(har_tiny_bundle, host, tmp_path, "feddyn", "scale10", anomaly=6.0)
    store = RunStore(res.store)
    try:
        rows = store.updates()
    finally:
        store.close()
    byz = {u["device_id"] for u in rows if (u["figures"] or {}).get("byzantine")}
    assert len(byz) == 3
    rejected = {(u["round"], u["device_id"]) for u in rows if not u["accepted"]}
    sent = {(r, d) for r in range(1, ROUNDS + 1) for d in byz}
    # no honest update is rejected; a x10 update of a device whose own update is small can
    # stay under the threshold (so "most", not "all": the aggregation rule is the backstop)
    assert rejected <= sent and len(rejected) >= len(sent) - 2, sorted(rejected)


# (case id, arguments, words the one-line message must contain): refused before any work
BAD_OPTIONS = [
    ("byzantine-above-one", ["--byzantine", "1.5"], ["'--byzantine'", "1.5", "0<=x<1"]),
    ("byzantine-negative", ["--byzantine", "-0.1"], ["'--byzantine'", "-0.1"]),
    ("unknown-attack", ["--byzantine", "0.2", "--attack", "nope"], ["'--attack'", "'nope'",
                                                                    "sign-flip"]),
    ("byzantine-without-attack", ["--byzantine", "0.2"], ["needs an --attack", "sign-flip"]),
    ("attack-without-byzantine", ["--attack", "noise"], ["needs Byzantine devices",
                                                         "--byzantine 0.2"]),
    ("byzantine-no-device", ["--byzantine", "0.01", "--attack", "noise"], ["is no device",
                                                                           "--clients"]),
    ("byzantine-every-device", ["--byzantine", "0.95", "--attack", "noise"],
     ["all 4 devices", "smaller --byzantine"]),
    ("label-flip-regression", ["--byzantine", "0.25", "--attack", "label-flip", "--dataset",
                               "thermostat"], ["classification dataset", "another --attack"]),
]


@pytest.mark.parametrize(("case", "args", "words"), BAD_OPTIONS, ids=[c[0] for c in BAD_OPTIONS])
def test_bad_byzantine_option_is_one_line(cli, tmp_path, case, args, words):
    code, out, err = cli("simulate", "--clients", "4", "--out", tmp_path / "out", *args)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err and "internal error" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists()
