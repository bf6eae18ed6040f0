"""The one text table of round metrics, for ``fltiny run``, ``fltiny simulate`` and the API.

Columns: round, every metric the rounds carry (held-out evaluation first, in the order they
appear, so a new metric shows up without code changes), participants, rejected, bytes up and
down, seconds, note. Rows print as rounds finish; a metric that appears later adds a column and
prints the header again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from fltiny.report import NOT_METRICS, metric_keys

_COUNTS = (("participants", "devices", 7), ("rejected", "rejected", 8),
           ("bytes_up", "bytes up", 9), ("bytes_down", "bytes down", 10))


def _row_of(item: Any) -> dict[str, Any]:
    """A store row (dict) or a RoundMetrics as one flat row."""
    if isinstance(item, dict):
        return item
    d = asdict(item)
    ev = d.pop("evaluation")
    personal = d.pop("personal", {})
    privacy = d.pop("privacy", {})
    d.pop("version", None)
    d.pop("canary", None)  # the verdict is in the run store; a rollback is in the note
    return {"round": d.pop("round"), **ev, **personal, **privacy, **d}


def _num(value: Any, width: int) -> str:
    if value is None or isinstance(value, float) and math.isnan(value):
        return f"{'-':>{width}}"
    if isinstance(value, float):
        return f"{value:{width}.4f}"
    return f"{value:>{width}}"


@dataclass
class RoundTable:
    metrics: list[str] = field(default_factory=list)

    def header(self) -> str:
        cells = [f"{'round':>5}"] + [f"{k:>{max(9, len(k))}}" for k in self.metrics]
        cells += [f"{title:>{w}}" for _k, title, w in _COUNTS] + [f"{'seconds':>7}", "note"]
        return " ".join(cells)

    def line(self, item: Any) -> list[str]:
        """The lines to print for one round: a header first when the columns changed."""
        row = _row_of(item)
        out = []
        new = [k for k in metric_keys([row]) if k not in self.metrics]
        if new or not self.metrics:
            self.metrics += new
            out.append(self.header())
        cells = [f"{row['round']:5d}"] + [_num(row.get(k), max(9, len(k))) for k in self.metrics]
        if row["round"] == 0:
            cells.append("initial model")
        else:
            cells += [_num(row.get(k) or 0, w) for k, _t, w in _COUNTS]
            cells.append(f"{row.get('seconds') or 0.0:7.2f}")
            if row.get("note"):
                cells.append(str(row["note"]))
        out.append(" ".join(cells))
        return out

    @classmethod
    def render(cls, rows: list[Any]) -> str:
        table = cls()
        return "\n".join(ln for r in rows for ln in table.line(r))


__all__ = ["NOT_METRICS", "RoundTable"]
