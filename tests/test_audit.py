"""The audit chain and the controls: ``fltiny audit`` passes on a real simulated run and names
the round whose data one changed byte of the store touches; ``fltiny ctl`` controls queued in
the store are applied by the running round loop and audited."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from fltiny.experiment import DataSettings
from fltiny.server.rounds import DeviceResult, RoundConfig, TrainParams, run_rounds
from fltiny.server.store import RunStore, params_sha256
from fltiny.strategies import ClientUpdate, make_strategy


@pytest.fixture(scope="module")
def sim_run(har_tiny_bundle, tmp_path_factory) -> Path:
    """3 rounds of 4 simulated devices; a tight anomaly threshold rejects some updates."""
    from fltiny.sim.run import SimConfig, simulate

    out = tmp_path_factory.mktemp("audited-run")
    cfg = SimConfig(clients=4, out=out, data=DataSettings(bundle=har_tiny_bundle),
                    server=RoundConfig(rounds=3, anomaly_threshold=1.5,
                                       train=TrainParams(epochs=1)))
    simulate(cfg)
    return out


def flip_byte(path: Path, needle: bytes, offset: int = 0) -> None:
    """Change one byte of the file: at ``offset`` into the first occurrence of ``needle``."""
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0 and data.find(needle, at + 1) < 0, "needle must occur exactly once"
    data[at + offset] ^= 0x01
    path.write_bytes(bytes(data))


def tampered(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy2(run / "run.sqlite", copy / "run.sqlite")
    return copy


@pytest.mark.slow
def test_audit_passes_on_a_simulated_run(cli, sim_run):
    code, out, err = cli("audit", "--run", sim_run)
    assert code == 0, err
    assert "audit chain intact: 4 records" in out
    store = RunStore.open_readonly(sim_run)
    body = store.verify()
    rows = store.updates()
    store.close()
    assert body.ok and any(not r["accepted"] and "anomaly score" in r["reason"] for r in rows)
    assert all(len(r["payload_sha256"]) == 64 for r in rows)


@pytest.mark.slow
def test_audit_names_the_round_of_a_changed_model_byte(cli, sim_run, tmp_path):
    store = RunStore.open_readonly(sim_run)
    params = [c for c in store.history() if c.round == 2][0].params
    store.close()
    copy = tampered(sim_run, tmp_path)
    # the blob spans overflow pages: its first 64 bytes are contiguous in the file
    flip_byte(copy / "run.sqlite", params.astype("<f4").tobytes()[:64], offset=17)
    code, _out, err = cli("audit", "--run", copy)
    assert code == 8
    assert "round 2 (version 2)" in err and "model parameters" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_audit_names_the_round_of_a_changed_rejection_reason(cli, sim_run, tmp_path):
    store = RunStore.open_readonly(sim_run)
    row = next(r for r in store.updates() if not r["accepted"])
    store.close()
    copy = tampered(sim_run, tmp_path)
    # the reason is in the updates table and in the audit record: change the table's copy
    data = (copy / "run.sqlite").read_bytes()
    reason = row["reason"].encode()
    first = data.find(reason)
    assert first >= 0
    needle = data[first - 8:first + len(reason)]
    flip_byte(copy / "run.sqlite", needle, offset=8 + reason.find(b"norm"))
    code, _out, err = cli("audit", "--run", copy)
    assert code == 8 and f"round {row['round']} (version {row['round']})" in err, err


# ---- controls on an in-memory fleet (fast, no model) --------------------------------------

class PullFleet:
    """Devices step towards a target; device 9 sends a huge update in ``bad_rounds``."""

    def __init__(self, target: np.ndarray, ids=(1, 2, 3), on_round=None,
                 bad_rounds=(1, 2)) -> None:
        self.target, self.ids, self.on_round = target, list(ids), on_round
        self.bad_rounds = bad_rounds
        self.asked: dict[int, list[int]] = {}

    def devices(self) -> list[int]:
        return self.ids

    def run_round(self, round_, devices, global_params, version, train, mu, deadline_s):
        self.asked[round_] = list(devices)
        if self.on_round:
            self.on_round(round_)
        out = []
        for d in devices:
            delta = (np.full_like(global_params, 50.0) if d == 9 and round_ in self.bad_rounds
                     else 0.5 * (self.target - global_params))
            out.append(DeviceResult(d, ClientUpdate(d, delta.astype(np.float32), 10, 0.1),
                                    bytes_up=40, bytes_down=400))
        return out


def distance(target):
    return lambda p: {"distance": float(np.linalg.norm(p - target))}


def test_controls_queued_during_a_run_are_applied_and_audited(tmp_path):
    target = np.arange(4, dtype=np.float32)
    path = tmp_path / "run.sqlite"

    def operator(round_: int) -> None:  # another process: its own connection, as 'fltiny ctl'
        other = RunStore(path)
        if round_ == 2:
            other.add_control("quarantine", 2)
            other.add_control("disable", 3)
        if round_ == 3:
            other.add_control("rollback", 1)
            other.add_control("clear", 2)
            other.add_control("enable", 3)
        other.close()

    fleet = PullFleet(target, on_round=operator)
    store = RunStore(path)
    metrics = run_rounds(fleet, make_strategy("fedavg"), store, RoundConfig(rounds=4),
                         np.zeros(4, np.float32), distance(target))
    # queued during round 2, applied from round 3: device 3 not asked, device 2 weight 0
    assert fleet.asked[2] == [1, 2, 3] and fleet.asked[3] == [1, 2]
    rows3 = store.updates(3)
    assert [(r["device_id"], r["accepted"]) for r in rows3] == [(1, 1), (2, 0)]
    assert "quarantined by control #1" in rows3[1]["reason"]
    # queued during round 3, applied at round 4: it starts from round 1's model
    assert fleet.asked[4] == [1, 2, 3]
    assert "rolled back to round 1" in metrics[3].note
    history = store.history()
    r1 = [c for c in history if c.round == 1][0]
    expected = r1.params + np.float32(0.5) * (target - r1.params)
    np.testing.assert_allclose(history[-1].params, expected, rtol=1e-6)
    result = store.verify()
    assert result.ok, result.line()
    assert store.pending_controls() == []
    store.close()


def test_reputation_quarantines_a_bad_device_until_cleared(tmp_path):
    target = np.ones(3, np.float32)
    path = tmp_path / "run.sqlite"

    def operator(round_: int) -> None:
        if round_ == 4:
            other = RunStore(path)
            other.add_control("clear", 9)
            other.close()

    store = RunStore(path)
    cfg = RoundConfig(rounds=5, max_update_ratio=5.0, reputation_threshold=0.5)
    run_rounds(PullFleet(target, ids=(1, 2, 9), on_round=operator), make_strategy("fedavg"),
               store, cfg, np.zeros(3, np.float32), distance(target))
    rows = {(r["round"], r["device_id"]): r for r in store.updates()}
    assert "above bound" in rows[(1, 9)]["reason"]
    assert rows[(2, 9)]["reputation"] == pytest.approx(0.49)
    # clean updates from round 3 on, but quarantined until the operator's clear
    for rnd in (3, 4):
        assert rows[(rnd, 9)]["accepted"] == 0
        assert "quarantined by control #1 (reputation)" in rows[(rnd, 9)]["reason"]
    assert rows[(5, 9)]["accepted"] == 1 and rows[(5, 9)]["reputation"] == 1.0
    assert [(c.action, c.origin) for c in store.controls()] == [
        ("quarantine", "reputation"), ("clear", "operator")]
    assert store.verify().ok
    store.close()


def test_a_changed_control_or_relinked_record_breaks_the_chain(tmp_path):
    target = np.ones(3, np.float32)
    path = tmp_path / "run.sqlite"
    store = RunStore(path)
    run_rounds(PullFleet(target), make_strategy("fedavg"), store, RoundConfig(rounds=2),
               np.zeros(3, np.float32), distance(target))
    store.rollback(1)
    assert store.verify().ok
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER controls_no_update")
    db.execute("UPDATE controls SET arg = 2")
    db.commit()
    db.close()
    store = RunStore(path)
    result = store.verify()
    assert not result.ok and result.version == 3 and "control #1" in result.problem
    store.close()


def test_store_api_rollback_is_a_recorded_control(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    run_rounds(PullFleet(np.ones(2, np.float32)), make_strategy("fedavg"), store,
               RoundConfig(rounds=2), np.zeros(2, np.float32), distance(np.ones(2)))
    rolled = store.rollback(1)
    assert rolled.sha256 == params_sha256([c for c in store.history() if c.round == 1][0].params)
    assert [c.origin for c in store.controls()] == ["api"] and store.verify().ok
    store.close()


def test_cli_audit_and_ctl_refuse_bad_input_in_one_line(cli, tmp_path):
    code, _o, err = cli("audit", "--run", tmp_path)
    assert code == 2 and "no run store at" in err and err.count("\n") == 1
    code, _o, err = cli("ctl", "--run", tmp_path, "quarantine", "3")
    assert code == 2 and "no run store at" in err
    store = RunStore(tmp_path / "run.sqlite")
    run_rounds(PullFleet(np.ones(2, np.float32)), make_strategy("fedavg"), store,
               RoundConfig(rounds=2), np.zeros(2, np.float32), distance(np.ones(2)))
    store.close()
    code, _o, err = cli("ctl", "--run", tmp_path, "quarantine", "42")
    assert code == 2 and "device 42 has not taken part" in err and err.count("\n") == 1
    code, _o, err = cli("ctl", "--run", tmp_path, "rollback", "7")
    assert code == 2 and "no checkpoint of round 7" in err and "rounds 0-2" in err
    code, out, err = cli("ctl", "--run", tmp_path, "quarantine", "2")
    assert code == 0 and "queued control #1 quarantine device 2" in out
    code, out, _e = cli("audit", "--run", tmp_path)
    assert code == 0 and "1 control(s) queued" in out
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.sqlite").write_bytes(b"not sqlite at all" * 100)
    code, _o, err = cli("audit", "--run", tmp_path / "bad")
    assert code == 2 and "not a usable run store" in err
