"""A fault campaign: emulated boards behind fault proxies (fltiny.devices.faults), federated
rounds over the bridge with every DELTA replayed on the host, then clean rounds to see that
every board recovered. bench/faults.py prints the table; tests/test_faults.py runs a short one.

Outcomes counted: rounds that met their quorum, updates accepted and whether each accepted one
replayed byte for byte (a corrupted or forged update that got through would not), frames the
bridge rejected by reason, and the boards that took part in the clean rounds at the end.
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fltiny.devices.faults import KINDS, FaultProxy, FaultRates

# per forwarded unit (corrupt: per byte); a round of har-tiny forwards ~30 units a board
DEFAULT_RATES = FaultRates(corrupt=0.002, drop=0.03, duplicate=0.03, reorder=0.03, stall=0.01,
                           disconnect=0.01, reset=0.003)


@dataclass
class CampaignResult:
    faults: collections.Counter[str]
    rounds: int
    quorum_met: int
    accepted: int
    accepted_replayed: int
    replay_mismatches: int
    rejected_frames: collections.Counter[str]
    clean_rounds: int
    recovered: list[bool] = field(default_factory=list)  # per board: took part at the end
    log: list[str] = field(default_factory=list)  # the bridge's and the round loop's lines

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


def campaign(bundle: Path, build_root: Path, out: Path, *, boards: int = 3,
             min_faults: int = 1000, max_rounds: int = 200, clean_rounds: int = 2,
             quorum: int = 2, rates: FaultRates = DEFAULT_RATES, seed: int = 0,
             say=print) -> CampaignResult:
    """Rounds over ``boards`` qemu-m4f boards behind fault proxies until ``min_faults`` faults
    were injected (or ``max_rounds``), then ``clean_rounds`` rounds without faults."""
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.replay import HostRound
    from fltiny.run.evaluate import HoldoutEvaluator
    from fltiny.run.runner import cached_firmware
    from fltiny.server.config import RoundConfig, TrainParams
    from fltiny.server.rounds import run_rounds
    from fltiny.server.store import RunStore
    from fltiny.strategies import make_strategy

    board = get_board("qemu-m4f")
    elf = cached_firmware(board, bundle, build_root, lambda _m: None)
    blobs = fleet_blobs(bundle, boards, max_windows=64)
    hr = HostRound(bundle)
    mhash = hashlib.sha256((bundle / "backbone.tflite").read_bytes()).digest()[:8]
    ev = HoldoutEvaluator.for_dataset(hr, "hapt")
    train = TrainParams(epochs=1, topk_fraction=0.05)
    strategy = make_strategy("fedavg")
    store = RunStore(Path(out) / "run.sqlite")
    proxies: list[FaultProxy] = []
    logs: list[str] = []
    with start_fleet(board, elf, [b.encode() for b in blobs]) as fleet:
        try:
            eps = []
            for i, (dev, blob) in enumerate(zip(fleet.devices, blobs, strict=True)):
                px = FaultProxy((dev.host, dev.port), rates, seed=seed * 100 + i,
                                reset_board=lambda d=dev: fleet.restart(d))
                proxies.append(px)
                eps.append(Endpoint(dev.device_id, px.url, blob, board.max_windows, DEV_KEY,
                                    board.name))
            bf = BridgeFleet(eps, hr, model_hash=mhash, log=logs.append, send_chunk=64,
                             timeout=0.15, retries=60)
            metrics = []
            params = hr.head.params.astype(np.float32)
            rounds_done = 0
            while rounds_done < max_rounds:
                faults = sum(sum(p.counts.values()) for p in proxies)
                if faults >= min_faults:
                    break
                step = min(5, max_rounds - rounds_done)
                cfg = RoundConfig(rounds=rounds_done + step, deadline_s=60, min_fit=quorum,
                                  train=train)
                metrics += run_rounds(bf, strategy, store, cfg, params, ev)
                rounds_done += step
                say(f"  {rounds_done} rounds, {sum(sum(p.counts.values()) for p in proxies)} "
                    f"faults injected")
            faulty_rounds = rounds_done
            for p in proxies:
                p.rates = FaultRates()
            cfg = RoundConfig(rounds=rounds_done + clean_rounds, deadline_s=60, min_fit=quorum,
                              train=replace(train))
            logs.append("---- clean rounds")
            clean = run_rounds(bf, strategy, store, cfg, params, ev, log=logs.append)
            metrics += clean
            last = store.updates(rounds_done + clean_rounds)
            took_part = {u["device_id"] for u in last if u["accepted"]}
            bf.close()
        finally:
            for p in proxies:
                p.close()
            store.close()
    faults: collections.Counter[str] = collections.Counter()
    for p in proxies:
        faults.update(p.counts)
    accepted = [lg for lg in bf.logs if lg.accepted_by_bridge]
    rejected: collections.Counter[str] = collections.Counter()
    for lg in bf.logs:
        rejected.update(lg.rejected_frames or {})
    return CampaignResult(
        faults=collections.Counter({k: faults.get(k, 0) for k in KINDS}),
        rounds=faulty_rounds,
        quorum_met=sum(1 for m in metrics[:faulty_rounds] if m.participants >= quorum),
        accepted=len(accepted), accepted_replayed=sum(1 for lg in accepted if lg.replay_match),
        replay_mismatches=bf.replay_mismatches, rejected_frames=rejected,
        clean_rounds=clean_rounds,
        recovered=[e.device_id in took_part for e in eps], log=logs)


def table(r: CampaignResult) -> str:
    lines = ["| fault | injected |", "| --- | ---: |"]
    lines += [f"| {k} | {r.faults[k]:,} |" for k in KINDS]
    lines.append(f"| all | {r.total_faults:,} |")
    lines += ["", "| outcome | value |", "| --- | ---: |",
              f"| rounds with faults | {r.rounds} |",
              f"| ... that met their quorum | {r.quorum_met} |",
              f"| updates accepted | {r.accepted} |",
              f"| ... replayed byte for byte | {r.accepted_replayed} |",
              f"| replay mismatches (corrupted or forged updates caught late) | "
              f"{r.replay_mismatches} |",
              f"| frames rejected by the bridge | {sum(r.rejected_frames.values()):,} |",
              f"| boards in the last of {r.clean_rounds} clean rounds | "
              f"{sum(r.recovered)} of {len(r.recovered)} |"]
    if r.rejected_frames:
        lines.append("")
        lines.append("frames rejected, by reason: " + ", ".join(
            f"{k} {v:,}" for k, v in r.rejected_frames.most_common()))
    return "\n".join(lines)
