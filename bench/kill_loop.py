"""Kill loop: the aggregator SIGKILLed at 20 seeded random points and resumed, boards outliving it.

    .venv/bin/python bench/kill_loop.py [--boards 3] [--rounds 40] [--kills 20] [--seed 0]

``fltiny emulate --board qemu-m4f -n 3 --pty --fleet-file F`` runs the boards in its own process
(har-tiny, one local epoch a round); ``fltiny run --fleet-file F`` is killed with SIGKILL at
seeded random points (during start-up, during the rounds, inside a checkpoint's SQLite
transaction: FLTINY_TEST_CKPT_HOLD_S holds it open; fltiny/bench/kill_loop.py) and started again
with ``--resume`` until the run ends (40 rounds leave room for 20 kills: a kill due after
the run's end is reported as missed, and the bench fails). The same run uninterrupted, on fresh boards, is the
reference. Prints where each kill landed, the lost rounds and the final model's sha256 against
the reference's; exits 1 unless no round is lost and every checkpoint is bit-identical.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fltiny.bench.kill_loop import run_loop, table  # noqa: E402
from fltiny.workflow import ensure_bundle  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="qemu-m4f")
    ap.add_argument("--boards", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    bundle = ensure_bundle("har-tiny", "hapt", lambda m: print(f"  {m}"), REPO / "build")
    with tempfile.TemporaryDirectory(prefix="fltiny-kill-") as tmp:
        r = run_loop(bundle, REPO / "build", Path(tmp), board=args.board, boards=args.boards,
                     rounds=args.rounds, kills=args.kills, seed=args.seed,
                     say=lambda m: print(f"  {m}", flush=True))
    print(table(r))
    if not r.ok:
        print("\n".join(r.log[-80:]))
    sys.exit(0 if r.ok else 1)


if __name__ == "__main__":
    main()
