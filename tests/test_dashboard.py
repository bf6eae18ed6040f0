"""The dashboard's JSON and its control action, without a browser (an in-memory fleet)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from fltiny.dashboard import state
from fltiny.dashboard.serve import DashboardServer
from fltiny.server.rounds import DeviceResult, RoundConfig, run_rounds
from fltiny.server.store import RunStore
from fltiny.strategies import ClientUpdate, make_strategy


class Fleet:
    def devices(self):
        return [1, 2, 9]

    def run_round(self, round_, devices, global_params, version, train, mu, deadline_s):
        return [DeviceResult(d, ClientUpdate(d, np.full_like(global_params, 50.0 if d == 9
                                                              else 0.1), 10, 0.1), 40, 400)
                for d in devices]


@pytest.fixture()
def run_dir(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    run_rounds(Fleet(), make_strategy("fedavg"), store, RoundConfig(rounds=3, max_update_ratio=5.0),
               np.zeros(3, np.float32), lambda p: {"accuracy": 0.5})
    store.close()
    return tmp_path


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_run_view_has_rounds_rejections_and_devices(run_dir):
    v = state.run_view(run_dir)
    assert v["run"]["status"] == "finished" and v["run"]["current_round"] == 3
    assert [r["heldout"] for r in v["rounds"]] == [0.5] * 4
    assert {r["device_id"] for r in v["rejected"]} == {9}
    assert "above bound" in v["rejected"][0]["reason"]
    dev9 = next(d for d in v["devices"] if d["device_id"] == 9)
    assert dev9["rejected"] == 3 and dev9["reputation"] < 0.5 and v["audit"]["ok"]
    assert state.device_view(run_dir, 9)["history"][0]["accepted"] is False


def test_dashboard_actions_queue_controls(run_dir):
    with DashboardServer(run_dir, port=0) as server:
        code, body = post(server.url + "api/ctl", {"action": "quarantine", "target": 9})
        assert code == 200 and body["queued"] == "#1 quarantine device 9 (dashboard)"
        code, body = post(server.url + "api/ctl", {"action": "quarantine", "target": 77})
        assert code == 400 and "device 77" in body["error"]
        code, body = post(server.url + "api/ctl", {"action": "rollback", "target": 12})
        assert code == 400 and "no checkpoint of round 12" in body["error"]
        code, body = post(server.url + "api/ctl", {"action": "explode", "target": 1})
        assert code == 400 and "unknown control" in body["error"]
        page = urllib.request.urlopen(server.url, timeout=10)
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    store = RunStore(run_dir / "run.sqlite")
    assert [c.describe() for c in store.pending_controls()] == ["#1 quarantine device 9 (dashboard)"]
    store.close()
