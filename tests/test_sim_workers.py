"""fltiny simulate over worker processes (fltiny.sim.workers): the same run, byte for byte,
as in one process, whatever the number of workers; a worker that dies or fails ends the run
with one line; options that need every device in one process are refused with --workers."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from fltiny.errors import FltinyError, UsageError
from fltiny.experiment import DataSettings, RoundConfig, SimConfig
from fltiny.server.rounds import TrainParams
from fltiny.sim.fleet import SimFleet
from fltiny.sim.run import simulate
from fltiny.sim.workers import WorkerFleet, default_workers


def _run(bundle: Path, out: Path, workers: int, churn: float = 0.0):
    cfg = SimConfig(clients=70, churn=churn, workers=workers, out=out,
                    data=DataSettings(bundle=bundle), server=RoundConfig(rounds=3))
    return simulate(cfg)


def _models(store: Path) -> list[bytes]:
    with sqlite3.connect(store) as db:
        return [bytes(r[0]) for r in db.execute("SELECT params FROM checkpoints ORDER BY version")]


def _updates(store: Path) -> list[tuple]:
    """Every device's row of the run store (the run id differs between runs)."""
    with sqlite3.connect(store) as db:
        return db.execute("SELECT round, device_id, accepted, reason, bytes_up, bytes_down, "
                          "num_examples, loss, norm, figures, version, payload_sha256 FROM "
                          "updates ORDER BY round, device_id").fetchall()


def test_two_and_three_workers_give_the_one_process_run(har_tiny_bundle, tmp_path):
    one = _run(har_tiny_bundle, tmp_path / "w1", workers=1, churn=0.2)
    for w in (2, 3):
        many = _run(har_tiny_bundle, tmp_path / f"w{w}", workers=w, churn=0.2)
        strip = [{k: v for k, v in r.items() if k != "seconds"} for r in many.rounds]
        assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in one.rounds]
        assert _models(many.store) == _models(one.store)
        assert _updates(many.store) == _updates(one.store)
    assert len(_models(one.store)) >= 3  # the rounds changed the model and were stored
    participants = [r["participants"] for r in one.rounds[1:]]
    assert all(0 < p < 70 for p in participants)  # churn took some devices out, as in one


@pytest.fixture
def fleet_parts(har_tiny_bundle):
    from fltiny.devices.data import fleet_blobs
    from fltiny.devices.replay import HostRound

    host = HostRound(har_tiny_bundle)
    blobs = fleet_blobs(har_tiny_bundle, 8)
    return host, blobs


def test_a_worker_that_dies_ends_the_round_with_one_line(fleet_parts):
    host, blobs = fleet_parts
    g = host.head.params.astype(np.float32)
    with WorkerFleet(blobs, lambda share: SimFleet(host, share), workers=2) as fleet:
        devices = fleet.devices()
        assert devices == sorted(b.device_id for b in blobs)
        results = fleet.run_round(1, devices, g, 1, TrainParams(epochs=1), 0.0, 60.0)
        assert [r.device_id for r in results] == devices and all(r.update for r in results)
        os.kill(fleet._procs[1].pid, signal.SIGKILL)
        fleet._procs[1].join()
        with pytest.raises(FltinyError, match=r"^simulation worker 1 died .* try --workers 1$"):
            fleet.run_round(2, devices, g, 1, TrainParams(epochs=1), 0.0, 60.0)
    assert not fleet._procs  # closed: no worker left behind


def test_an_error_in_a_worker_is_the_rounds_error(fleet_parts):
    host, blobs = fleet_parts
    g = np.zeros(host.n_params + 1, np.float32)  # a global model of the wrong size
    with WorkerFleet(blobs, lambda share: SimFleet(host, share), workers=2) as fleet:
        with pytest.raises(FltinyError, match=r"^round 1 failed in a simulation worker: worker 0: "
                           r"ValueError: cannot reshape"):
            fleet.run_round(1, fleet.devices(), g, 1, TrainParams(epochs=1), 0.0, 60.0)
    assert not fleet._procs


@pytest.mark.parametrize("extra, flag", [
    ({"server": RoundConfig(secagg=True)}, "--secagg"),
    ({"byzantine": 0.2, "attack": "sign-flip"}, "--byzantine"),
    ({"gateways": 2}, "--gateways"),
])
def test_options_that_need_one_process_are_refused_with_workers(extra, flag):
    with pytest.raises(UsageError, match=rf"^{flag} runs in one process: drop --workers 2"):
        SimConfig(clients=15, workers=2, **extra)


def test_default_workers_keeps_small_fleets_in_one_process():
    assert default_workers(15) == 1
    assert default_workers(63) == 1
    cores = len(os.sched_getaffinity(0))
    assert default_workers(10_000) == cores
