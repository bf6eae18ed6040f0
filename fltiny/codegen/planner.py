"""Static arena planning: offsets for the activation buffers from their lifetimes.

Greedy first-fit by decreasing size (the strategy of TFLM's GreedyMemoryPlanner, written
from its description): buffers whose lifetimes [first, last] (op indices) intersect must not
overlap in memory; each buffer is placed at the lowest aligned offset that clears every
already-placed, simultaneously-live buffer. Not optimal in general, never wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 16


@dataclass(frozen=True)
class Request:
    key: int
    size: int
    first: int  # index of the op that writes it
    last: int  # index of the last op that reads it (>= first)


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def lives_overlap(a: Request, b: Request) -> bool:
    return a.first <= b.last and b.first <= a.last


def plan_arena(requests: list[Request], align: int = ALIGN) -> tuple[dict[int, int], int]:
    """Returns ({key: offset}, arena bytes). Offsets are multiples of `align`."""
    order = sorted(requests, key=lambda r: (-r.size, r.first, r.key))
    placed: list[tuple[Request, int]] = []
    offsets: dict[int, int] = {}
    for req in order:
        live = sorted(
            ((off, off + p.size) for p, off in placed if lives_overlap(p, req)),
        )
        candidate = 0
        for start, end in live:
            if candidate + req.size <= start:
                break
            candidate = max(candidate, _align(end, align))
        offsets[req.key] = candidate
        placed.append((req, candidate))
    total = max((offsets[r.key] + r.size for r in requests), default=0)
    return offsets, _align(total, align)
