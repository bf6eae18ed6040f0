"""Run reports: per-round metrics as JSON and CSV, and a PNG plot (matplotlib, Agg backend).

``round_rows(store)`` turns the run store's checkpoints into one dict per round (round 0 = the
initial model): round, version, sha256, note, every evaluation metric by name, the devices'
personal metric (personal_<metric>, personal_<metric>_worst; from round 1), participants,
rejected, bytes_up, bytes_down, seconds. ``write_report(out_dir, rounds, summary)``: ``summary``
is free-form (run configuration, byte accounting, replay counts). Files: metrics.json
({"summary", "rounds"}), metrics.csv (one row per round, a column for every metric found),
metrics.png (held-out and personal metric, epsilon with central or local DP, bytes per round).
``fltiny.report.table`` prints the rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fltiny.server.store import RunStore

ROUND_FIELDS = ("participants", "rejected", "bytes_up", "bytes_down", "seconds")
NOT_METRICS = {"round", "version", "sha256", "note", *ROUND_FIELDS}


def round_rows(store: RunStore) -> list[dict[str, Any]]:
    """One row per checkpointed round, from the run store (the source of truth; survives
    --resume)."""
    rows = []
    for c in store.history():
        row: dict[str, Any] = {"round": c.round, "version": c.version, "sha256": c.sha256,
                               "note": c.note}
        row.update({k: float(v) for k, v in c.metrics.get("evaluation", {}).items()})
        row.update({k: float(v) for k, v in c.metrics.get("personal", {}).items()})
        row.update({k: float(v) for k, v in c.metrics.get("privacy", {}).items()})
        if c.round > 0:
            row.update({k: c.metrics.get(k) for k in ROUND_FIELDS})
        rows.append(row)
    return rows


def metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every per-round figure that is not bookkeeping, in first-seen order."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in NOT_METRICS and k not in keys]
    return keys


def write_report(out_dir: Path, rounds: list[dict[str, Any]], summary: dict[str, Any]) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "metrics.json"
    js.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2, sort_keys=True))
    cols = ["round", *metric_keys(rounds), *[c for c in ROUND_FIELDS if any(c in r for r in rounds)],
            "note"]
    cs = out_dir / "metrics.csv"
    with cs.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rounds:
            w.writerow({c: r.get(c, "") for c in cols})
    png = out_dir / "metrics.png"
    plot(rounds, png, title=summary.get("title", "fltiny run"))
    return [js, cs, png]


def plot(rounds: list[dict[str, Any]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = metric_keys(rounds)
    metric = next((k for k in ("accuracy", "mae") if k in keys), keys[0] if keys else "loss")
    xs = [r["round"] for r in rounds if r.get(metric) is not None]
    ys = [r[metric] for r in rounds if r.get(metric) is not None]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    a1.plot(xs, ys, marker="o", label=f"held-out {metric} (global model, new users)")
    pk = f"personal_{metric}"
    pr = [r for r in rounds if r.get(pk) is not None]
    if pr:
        a1.plot([r["round"] for r in pr], [r[pk] for r in pr], marker="s",
                label=f"personal {metric} (mean over devices, their own future data)")
        a1.plot([r["round"] for r in pr], [r[f"{pk}_worst"] for r in pr], linestyle=":",
                label="personal, worst device")
        a1.legend(fontsize=8)
    a1.set_ylabel(metric)
    a1.grid(True, alpha=0.3)
    eps = [(key, label) for key, label in (("epsilon", "epsilon (central DP)"),
                                             ("ldp_epsilon", "epsilon (local DP, worst device)"))
           if any(r.get(key) is not None for r in rounds)]
    if eps:  # DP: epsilon spent so far, on its own axis
        ae = a1.twinx()
        for key, label in eps:
            er = [r for r in rounds if r.get(key) is not None]
            ae.plot([r["round"] for r in er], [r[key] for r in er], color="tab:red",
                    linestyle="--" if key == "epsilon" else "-.", label=label)
        ae.set_ylabel("epsilon", color="tab:red")
        ae.legend(fontsize=8, loc="lower right")
    a1.set_title(title)
    br = [r for r in rounds if r["round"] > 0]
    a2.bar([r["round"] - 0.2 for r in br], [r.get("bytes_up", 0) for r in br], width=0.4,
           label="up (wire)")
    a2.bar([r["round"] + 0.2 for r in br], [r.get("bytes_down", 0) for r in br], width=0.4,
           label="down (wire)")
    a2.set_ylabel("bytes per round")
    a2.set_xlabel("round")
    a2.legend()
    a2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
