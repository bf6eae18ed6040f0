"""A process and its descendants, from /proc: their summed resident memory, and a command run
with that sum sampled (the peak memory figures of the scale benchmarks)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def tree_rss(root: int) -> int:
    """Summed RSS (bytes) of ``root`` and all its descendants. Pages that forked processes
    share are counted once per process, so this is an upper bound of what they hold."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        kids = [c for c, pp in parent.items() if pp in frontier and c not in tree]
        tree.update(kids)
        frontier = kids
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    returncode: int
    wall_seconds: float
    peak_rss: int  # bytes: the peak of tree_rss over the run
    stdout: str


def run_sampled(cmd: list[str], env: dict[str, str] | None = None,
                every_s: float = 0.2) -> Measured:
    """Run ``cmd`` (stderr discarded) in a session of its own; wall time and peak tree RSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(every_s)
    wall = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    return Measured(proc.returncode, wall, peak, out)
