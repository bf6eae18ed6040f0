"""What the dashboard shows, read from a run store (read-only) into JSON-able dicts.

``run_view(run_dir)``: the run (configuration, status, the current round), one row per round
(held-out and personal metric, participation, rejected, bytes up and down, note, model sha256),
every rejected update with its reason, the devices (last seen, rounds accepted / rejected /
failed, anomaly scores per round, reputation, quarantined / disabled, the model they were last
sent, board), the controls and the audit chain's verdict. ``device_view(run_dir, device_id)``:
one device's history. Every call opens the store afresh, so a run in progress in another thread
or process is seen as it is now.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from fltiny.errors import UsageError
from fltiny.server.controls import FleetControls
from fltiny.server.store import RunStore


def _num(value: Any) -> Any:
    """JSON has no NaN or infinity: None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return _num(obj)


def _checkpoints(store: RunStore) -> list[dict[str, Any]]:
    rows = store.db.execute(
        "SELECT version, round, sha256, metrics, note, created FROM checkpoints WHERE run_id = ? "
        "ORDER BY version", (store.run_id,)).fetchall()
    out = []
    for version, round_, sha, metrics, note, created in rows:
        m = json.loads(metrics)
        out.append({"version": version, "round": round_, "sha256": sha, "note": note,
                    "created": created, "evaluation": m.get("evaluation", {}),
                    "personal": m.get("personal", {}),
                    "participants": m.get("participants"), "rejected": m.get("rejected"),
                    "bytes_up": m.get("bytes_up"), "bytes_down": m.get("bytes_down"),
                    "seconds": m.get("seconds"),
                    "epsilon": m.get("privacy", {}).get("epsilon"),
                    "ldp_epsilon": m.get("privacy", {}).get("ldp_epsilon")})
    return out


def _metric(checkpoints: list[dict[str, Any]]) -> str:
    keys = {k for c in checkpoints for k in c["evaluation"]}
    return next((k for k in ("accuracy", "mae") if k in keys), sorted(keys)[0] if keys else "loss")


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("summary", {})
    except ValueError:
        return {}


def _privacy(settings: dict[str, Any], ckpts: list[dict[str, Any]]) -> str:
    """The run's protections (central DP, local DP, secure aggregation) and epsilon so far."""
    parts = []
    if settings.get("dp_clip"):
        eps = next((c["epsilon"] for c in reversed(ckpts) if c["epsilon"] is not None), None)
        noise = settings.get("dp_noise")
        parts.append(f"central DP: updates clipped to {settings['dp_clip']:g}, noise multiplier "
                     f"{'from --dp-epsilon' if noise is None else format(noise, 'g')}, "
                     f"delta {settings.get('dp_delta', 0):g}"
                     + ("" if eps is None else f"; epsilon so far {eps:.3f}"))
    train = settings.get("train") or {}
    if train.get("ldp_clip"):
        eps = next((c.get("ldp_epsilon") for c in reversed(ckpts)
                    if c.get("ldp_epsilon") is not None), None)
        parts.append(f"local DP on the devices: updates clipped to {train['ldp_clip']:g}, noise "
                     f"multiplier {train.get('ldp_noise', 0):g}, delta "
                     f"{settings.get('dp_delta', 0):g}"
                     + ("" if eps is None else f"; worst device's epsilon so far {eps:.3f}"))
    if settings.get("secagg"):
        parts.append("secure aggregation: the server sees only the masked sum")
    return "; ".join(parts) if parts else "off (no differential privacy in this run)"


def _run_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir.parent if run_dir.suffix == ".sqlite" else run_dir


def open_store(run_dir: Path) -> RunStore:
    return RunStore.open_readonly(_run_dir(run_dir))


def run_view(run_dir: Path) -> dict[str, Any]:
    run_dir = _run_dir(run_dir)
    store = open_store(run_dir)
    try:
        return _clean(_run_view(store, run_dir))
    finally:
        store.close()


def _run_view(store: RunStore, run_dir: Path) -> dict[str, Any]:
    config = store.config() or {}
    target = int(config.get("rounds", {}).get("rounds", 0))
    ckpts = _checkpoints(store)
    metric = _metric(ckpts)
    updates = store.updates()
    controls = store.controls()
    applied = dict(store.applied_controls())
    fleet = FleetControls.of([c for c in controls if c.seq in applied])
    current = ckpts[-1]["round"] if ckpts else 0
    finished = bool(ckpts) and target > 0 and current >= target
    last_write = ckpts[-1]["created"] if ckpts else None
    sha_of_version = {c["version"]: c["sha256"] for c in ckpts}
    rounds = []
    for c in ckpts:
        rounds.append({
            "round": c["round"], "version": c["version"], "sha256": c["sha256"],
            "note": c["note"], "heldout": c["evaluation"].get(metric),
            "personal": c["personal"].get(f"personal_{metric}"),
            "personal_worst": c["personal"].get(f"personal_{metric}_worst"),
            "participants": c["participants"], "rejected": c["rejected"],
            "bytes_up": c["bytes_up"], "bytes_down": c["bytes_down"], "seconds": c["seconds"],
            "epsilon": c["epsilon"], "evaluation": c["evaluation"]})
    devices: dict[int, dict[str, Any]] = {}
    rejected = []
    for u in updates:
        d = devices.setdefault(u["device_id"], {
            "device_id": u["device_id"], "rounds": 0, "accepted": 0, "rejected": 0, "failed": 0,
            "last_seen_round": None, "last_anomaly": None, "max_anomaly": None,
            "reputation": 1.0, "anomaly": {}, "model_sha256": None, "board": None,
            "last_reason": ""})
        d["rounds"] += 1
        failed = u["norm"] is None and not u["accepted"] and u["num_examples"] == 0
        if u["accepted"]:
            d["accepted"] += 1
        elif failed:
            d["failed"] += 1
        else:
            d["rejected"] += 1
        if not u["accepted"]:
            rejected.append({"round": u["round"], "device_id": u["device_id"],
                             "reason": u["reason"], "norm": _num(u["norm"]),
                             "anomaly": _num(u["anomaly"])})
            d["last_reason"] = u["reason"]
        if not failed:
            d["last_seen_round"] = u["round"]
        if u["anomaly"] is not None:
            d["last_anomaly"] = u["anomaly"]
            d["max_anomaly"] = max(d["max_anomaly"] or 0.0, u["anomaly"])
            d["anomaly"][str(u["round"])] = u["anomaly"]
        if u["reputation"] is not None:
            d["reputation"] = u["reputation"]
        if u["version"] is not None:  # the model it was sent: the version before this round's
            d["model_sha256"] = sha_of_version.get(u["version"] - 1)
        d["board"] = u["figures"].get("board") or d["board"]
    for d in devices.values():
        d["quarantined"] = fleet.quarantine_reason(d["device_id"])
        d["disabled"] = d["device_id"] in fleet.disabled
        d["health"] = ("disabled" if d["disabled"] else "quarantined" if d["quarantined"]
                       else "failing" if d["failed"] and d["last_seen_round"] != current
                       else "ok")
    audit = store.verify()
    summary = _summary(run_dir)
    return {
        "run": {"dir": str(run_dir), "strategy": config.get("strategy"), "metric": metric,
                "rounds_target": target, "current_round": current, "finished": finished,
                "status": "finished" if finished else ("running" if ckpts else "starting"),
                "last_write": last_write, "now": time.time(),
                "model": summary.get("model"), "dataset": summary.get("dataset"),
                "partition": summary.get("partition"), "devices": summary.get("devices"),
                "settings": config.get("rounds", {}),
                "privacy": _privacy(config.get("rounds", {}), ckpts)},
        "rounds": rounds,
        "rejected": rejected,
        "devices": [devices[k] for k in sorted(devices)],
        "controls": [{**c.record(), "applied_in_version": applied.get(c.seq),
                      "text": c.describe()} for c in controls],
        "audit": {"ok": audit.ok, "line": audit.line(), "records": audit.records,
                  "head": audit.head},
    }


def device_view(run_dir: Path, device_id: int) -> dict[str, Any]:
    run_dir = _run_dir(run_dir)
    store = open_store(run_dir)
    try:
        ckpts = _checkpoints(store)
        metric = _metric(ckpts)
        rows = [u for u in store.updates() if u["device_id"] == device_id]
        if not rows:
            seen = sorted({u["device_id"] for u in store.updates()})
            raise UsageError(f"device {device_id} has not taken part in this run (devices "
                             f"{', '.join(map(str, seen)) or 'none yet'})")
        sha_of_version = {c["version"]: c["sha256"] for c in ckpts}
        history = [{
            "round": u["round"], "accepted": bool(u["accepted"]), "reason": u["reason"],
            "examples": u["num_examples"], "loss": u["loss"], "norm": u["norm"],
            "anomaly": u["anomaly"], "reputation": u["reputation"], "bytes_up": u["bytes_up"],
            "bytes_down": u["bytes_down"],
            "personal": u["figures"].get("personal_metric"),
            "payload_sha256": u["payload_sha256"],
            "model_sha256": sha_of_version.get((u["version"] or 0) - 1),
            "figures": u["figures"]} for u in rows]
        view = _run_view(store, run_dir)
        summary = next(d for d in view["devices"] if d["device_id"] == device_id)
        return _clean({"run": view["run"], "device": summary, "metric": metric,
                       "history": history,
                       "controls": [c for c in view["controls"]
                                    if c["action"] != "rollback" and c["arg"] == device_id]})
    finally:
        store.close()
