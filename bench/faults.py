"""Fault campaign: >= 1,000 injected link faults on emulated boards, tabulated fault -> outcome.

    .venv/bin/python bench/faults.py [--boards 3] [--faults 1000] [--seed 0]

Three qemu-m4f boards (har-tiny, 64 windows each, one local epoch a round so the campaign is
about the link), each behind a fault proxy (fltiny/devices/faults.py) that by seed corrupts
bytes (0.2 % of them), drops, duplicates, reorders or stalls a forwarded unit (3, 3, 3, 1 %),
cuts the host's connection (1 %) or resets the board (0.3 %: its process killed and started
again); FedAvg rounds with a quorum of 2 over the bridge, every DELTA replayed on the host,
until the faults reach --faults; then two clean rounds. Prints the table (fltiny/bench/faults.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.bench.faults import campaign, table  # noqa: E402
from fltiny.workflow import ensure_bundle  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=3)
    ap.add_argument("--faults", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    bundle = ensure_bundle("har-tiny", "hapt", lambda m: print(f"  {m}"), REPO / "build")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fltiny-faults-") as tmp:
        r = campaign(bundle, REPO / "build", Path(tmp), boards=args.boards,
                     min_faults=args.faults, seed=args.seed)
    print(table(r))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    ok = (r.quorum_met == r.rounds and r.accepted == r.accepted_replayed
          and r.replay_mismatches == 0 and all(r.recovered))
    if not ok:  # what the bridge and the round loop said, from the last faulty rounds on
        print("\n".join(r.log[-60:]))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
