"""Run reports: per-round metrics as JSON and CSV, and a PNG plot (matplotlib, Agg backend).

``write_report(out_dir, rounds, summary)``: ``rounds`` is one dict per round (round 0 = the
initial model) with at least round, accuracy or mae, loss, participants, bytes_up,
bytes_down, seconds; ``summary`` is free-form (run configuration, byte accounting, replay
counts). Files: metrics.json ({"summary", "rounds"}), metrics.csv (one row per round),
metrics.png (held-out metric and bytes per round).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

COLUMNS = ["round", "accuracy", "mae", "loss", "participants", "rejected", "bytes_up",
           "bytes_down", "payload_bytes_per_device", "wire_up_per_device", "seconds", "note"]


def write_report(out_dir: Path, rounds: list[dict[str, Any]], summary: dict[str, Any]) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "metrics.json"
    js.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2, sort_keys=True))
    cols = [c for c in COLUMNS if any(c in r for r in rounds)]
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

    metric = "accuracy" if any(r.get("accuracy") is not None for r in rounds) else "mae"
    xs = [r["round"] for r in rounds if r.get(metric) is not None]
    ys = [r[metric] for r in rounds if r.get(metric) is not None]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    a1.plot(xs, ys, marker="o")
    a1.set_ylabel(f"held-out {metric}")
    a1.grid(True, alpha=0.3)
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
