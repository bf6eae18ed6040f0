"""What a run's devices cost the link: bytes per device-round in both directions, from the
round rows of the run store (``bytes_up`` / ``bytes_down``: everything on the wire, frames,
tags, COBS, chunking, ACKs and retransmissions; the simulator counts the same through the C
encoder), against the dense float32 delta of the trained parameters.

Round 1 also carries each device's HELLO and the FULL model; the steady state is the rounds
after it, when a device holds the previous model and gets a GLOBAL delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WireFigures:
    n_params: int  # trained parameters (the delta's dense length)
    up: float  # device -> host bytes per device-round, steady state
    down: float  # host -> device bytes per device-round, steady state
    first_up: float  # round 1 (HELLO, ACKs of the FULL model)
    first_down: float
    steady_rounds: int  # rounds the steady figures average (0: only round 1 ran)

    @property
    def dense_bytes(self) -> int:
        return 4 * self.n_params

    @property
    def up_ratio(self) -> float:
        return self.dense_bytes / self.up if self.up else float("inf")

    @property
    def down_ratio(self) -> float:
        return self.dense_bytes / self.down if self.down else float("inf")

    @property
    def up_bits_per_param(self) -> float:
        return 8 * self.up / self.n_params

    @classmethod
    def of(cls, rows: Sequence[dict[str, Any]], n_params: int) -> WireFigures | None:
        """From the round rows (round 0, the initial model, has no traffic); None when no
        device took part in any round."""
        def per_device(rs: Sequence[dict[str, Any]], key: str) -> float:
            n = sum((r.get("participants") or 0) + (r.get("rejected") or 0) for r in rs)
            return sum(r.get(key) or 0 for r in rs) / n if n else 0.0

        done = [r for r in rows if r.get("round", 0) > 0]
        first = [r for r in done if r["round"] == 1] or done[:1]
        steady = [r for r in done if r["round"] > 1] or first
        if not done or not per_device(done, "bytes_up"):
            return None
        return cls(n_params, per_device(steady, "bytes_up"), per_device(steady, "bytes_down"),
                   per_device(first, "bytes_up"), per_device(first, "bytes_down"),
                   len([r for r in done if r["round"] > 1]))

    def summary(self) -> dict[str, Any]:
        return {"trained_params": self.n_params, "dense_float32_bytes": self.dense_bytes,
                "up_bytes_per_device_round": self.up, "down_bytes_per_device_round": self.down,
                "up_ratio_vs_dense": self.up_ratio, "down_ratio_vs_dense": self.down_ratio,
                "up_bits_per_param": self.up_bits_per_param,
                "first_round_up_bytes": self.first_up, "first_round_down_bytes": self.first_down,
                "steady_rounds": self.steady_rounds}

    def line(self) -> str:
        steady = "rounds 2+, " if self.steady_rounds else "round 1 only, "
        return (f"wire per device-round ({steady}frames, tags and ACKs included): up "
                f"{self.up:.0f} B = {self.up_ratio:.1f}x below the {self.dense_bytes:,}-B dense "
                f"float32 delta of {self.n_params:,} trained parameters "
                f"({self.up_bits_per_param:.2f} bits per parameter), down {self.down:.0f} B "
                f"({self.down_ratio:.1f}x); round 1 with HELLO and the full model: up "
                f"{self.first_up:.0f} B, down {self.first_down:.0f} B")
