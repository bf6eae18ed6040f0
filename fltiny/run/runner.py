"""``fltiny run``: federated rounds with emulated boards in the loop.

bundle (reused, or trained + exported) -> firmware per board (cached by bundle hash + board) ->
one data blob per device (one fleet user each by default) -> boards started (QEMU / native)
-> BridgeFleet -> ``run_rounds`` (resumes from the run store when it has checkpoints) ->
report directory (metrics.json, metrics.csv, metrics.png, run.sqlite, bridge.jsonl).
Every board is stopped at the end, on an error and on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.errors import UsageError
from fltiny.server.config import TrainParams

_T = TrainParams()

Say = Callable[[str], None]


@dataclass
class RunOptions:
    fleet: list[tuple[str, int]] = field(default_factory=lambda: [("qemu-m4f", 4)])
    rounds: int = 10
    dataset: str = "hapt"
    model: str = "har-tiny"
    bundle: Path | None = None  # default build/<model>
    strategy: str = "fedavg"
    fraction: float = 1.0
    min_fit: int = 1
    deadline_s: float = 120.0
    epochs: int = _T.epochs
    lr: float = _T.learning_rate
    momentum: float = _T.momentum
    batch_size: int = _T.batch_size
    topk: float = _T.topk_fraction
    clip: float = _T.clip
    seed: int = 0
    partition: str = "natural"
    global_delta: bool = True
    send_chunk: int = 256  # payload bytes per host frame (smaller survives noisy lines)
    out: Path = Path("reports/run")
    resume: bool = False
    build_root: Path = field(default_factory=lambda: Path(os.environ.get("FLTINY_BUILD_DIR", "build")))


def parse_fleet(spec: str) -> list[tuple[str, int]]:
    """'qemu-m4f=3,qemu-rv32=3,native=2' -> [(board, count), ...]."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition("=")
        try:
            n = int(count) if count else 1
        except ValueError:
            raise UsageError(f"--fleet entry '{part}': the count must be an integer "
                             "(e.g. qemu-m4f=3,qemu-rv32=2)") from None
        if n < 1:
            raise UsageError(f"--fleet entry '{part}': at least one device")
        out.append((name.strip(), n))
    if not out:
        raise UsageError("--fleet is empty; e.g. --fleet qemu-m4f=3,qemu-rv32=2")
    return out


def ensure_bundle(model: str, dataset: str, root: Path, say: Say) -> Path:
    """build/<model>: reused when it holds this model's export, trained and exported otherwise."""
    from fltiny.workflow import ensure_bundle as ensure

    return ensure(model, dataset, lambda s: say(f"  {s}"), root)


def bundle_hash(bundle: Path) -> str:
    h = hashlib.sha256()
    for name in ("manifest.json", "head.bin", "backbone.tflite"):
        p = bundle / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cached_firmware(board, bundle: Path, root: Path, say: Say) -> Path:
    """ELF for (bundle, board): build/fw-cache/<board>-<bundle hash>/firmware.elf, built once."""
    from fltiny.build.firmware import build_firmware

    cache = Path(root).resolve() / "fw-cache" / f"{board.name}-{bundle_hash(bundle)[:16]}"
    elf = cache / "firmware.elf"
    if elf.is_file():
        say(f"reusing firmware {elf}")
        return elf
    say(f"building firmware for {board.name}")
    t0 = time.perf_counter()
    fw = build_firmware(board, bundle, cache / "project")
    shutil.copy2(fw.elf, elf)
    say(f"built {board.name} in {time.perf_counter() - t0:.1f} s")
    return elf


@dataclass
class RunResult:
    rounds: list[dict[str, Any]]
    summary: dict[str, Any]
    files: list[Path]


def run(opts: RunOptions, say: Say = print, log: Say = print) -> RunResult:
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.devices.replay import HostRound
    from fltiny.run.evaluate import HoldoutEvaluator
    from fltiny.server.rounds import RoundConfig, run_rounds
    from fltiny.server.store import RunStore
    from fltiny.strategies import make_strategy

    out = Path(opts.out)
    store_path = out / "run.sqlite"
    if store_path.exists() and not opts.resume:
        raise UsageError(f"{store_path} exists: pass --resume to continue that run, or choose "
                         "another --out")
    if opts.resume and not store_path.exists():
        say(f"no run store in {out}: starting a new run")
    boards = [(get_board(name), n) for name, n in opts.fleet]
    for b, _ in boards:
        if not b.emulated:
            raise UsageError(f"board {b.name} is real hardware; 'fltiny run' starts emulated "
                             "boards (qemu-*, native)")
    total = sum(n for _, n in boards)
    bundle = Path(opts.bundle) if opts.bundle else ensure_bundle(opts.model, opts.dataset,
                                                                 opts.build_root, say)
    elfs = {b.name: cached_firmware(b, bundle, opts.build_root, say) for b, _ in boards}
    say(f"data: {opts.partition} partition of the {opts.dataset} fleet, {total} devices")
    blobs = fleet_blobs(bundle, total, dataset=opts.dataset, scheme=opts.partition,
                        seed=opts.seed)
    hr = HostRound(bundle)
    say("held-out evaluation: backbone features of the held-out windows (host build of the C)")
    evaluate = HoldoutEvaluator.for_dataset(hr, opts.dataset)
    backbone = (bundle / "backbone.tflite").read_bytes()
    model_hash = hashlib.sha256(backbone).digest()[:8]
    strategy = make_strategy(opts.strategy)
    train = TrainParams(epochs=opts.epochs, batch_size=opts.batch_size, learning_rate=opts.lr,
                        momentum=opts.momentum, clip=opts.clip, topk_fraction=opts.topk,
                        seed=opts.seed)
    cfg = RoundConfig(rounds=opts.rounds, fraction=opts.fraction, min_fit=opts.min_fit,
                      deadline_s=opts.deadline_s, seed=opts.seed, train=train)
    out.mkdir(parents=True, exist_ok=True)
    bridge_log = out / "bridge.jsonl"

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, _terminate)
    store = RunStore(store_path)
    try:
        with ExitStack() as stack:
            endpoints = []
            i = 0
            for b, n in boards:
                mine = blobs[i:i + n]
                i += n
                raw = []
                for blob in mine:
                    blob.windows = blob.windows[:b.max_windows]
                    if blob.labels is not None:
                        blob.labels = blob.labels[:b.max_windows]
                    if blob.targets is not None:
                        blob.targets = blob.targets[:b.max_windows]
                    raw.append(blob.encode())
                say(f"starting {n} x {b.name}")
                fleet = stack.enter_context(start_fleet(b, elfs[b.name], raw))
                for dev, blob in zip(fleet.devices, mine, strict=True):
                    endpoints.append(Endpoint(dev.device_id, f"tcp://{dev.endpoint}", blob.windows,
                                              blob.labels, blob.targets, b.max_windows, DEV_KEY,
                                              b.name))
            bf = BridgeFleet(endpoints, hr, model_hash=model_hash, global_delta=opts.global_delta,
                             send_chunk=opts.send_chunk, log=log)
            stack.callback(bf.close)
            initial = hr.head.params.astype(np.float32)
            seen = 0

            def progress(mtr) -> None:
                nonlocal seen
                logs = bf.logs[seen:]
                seen = len(bf.logs)
                with bridge_log.open("a") as f:
                    for lg in logs:
                        f.write(json.dumps(asdict(lg), sort_keys=True) + "\n")
                ev = mtr.evaluation
                metric = (f"accuracy {ev['accuracy']:.4f}" if "accuracy" in ev
                          else f"MAE {ev.get('mae', float('nan')):.4f}")
                say(f"round {mtr.round:3d}: {metric}, loss {ev.get('loss', float('nan')):.4f}, "
                    f"{mtr.participants} updates ({mtr.rejected} rejected), up {mtr.bytes_up} B, "
                    f"down {mtr.bytes_down} B, {mtr.seconds:.1f} s")

            latest = store.latest()
            if latest is not None:
                say(f"resuming after round {latest.round} from {store_path} (version "
                    f"{latest.version}, sha256 {latest.sha256[:12]})")
            run_rounds(bf, strategy, store, cfg, initial, evaluate, progress, log)
            replays, mismatches = bf.replays, bf.replay_mismatches
        rounds, summary = collect(store, bridge_log, hr.n_params)
        summary.update({
            "fleet": {name: n for name, n in opts.fleet}, "dataset": opts.dataset,
            "model": hr.manifest.model, "strategy": opts.strategy, "options": _jsonable(opts),
            "replays_this_process": replays, "replay_mismatches_this_process": mismatches,
            "title": f"{hr.manifest.model} on {opts.dataset}: "
                     + ", ".join(f"{n} x {b}" for b, n in opts.fleet),
        })
        from fltiny.report import write_report

        files = write_report(out, rounds, summary) + [store_path]
        return RunResult(rounds, summary, files)
    finally:
        store.close()
        signal.signal(signal.SIGTERM, old_term)


def _jsonable(opts: RunOptions) -> dict[str, Any]:
    d = asdict(opts)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def collect(store, bridge_log: Path, n_params: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-round rows from the run store (the source of truth, survives --resume) and the
    bridge log (payload bytes, replays)."""
    logs: list[dict[str, Any]] = []
    if bridge_log.is_file():
        logs = [json.loads(ln) for ln in bridge_log.read_text().splitlines() if ln.strip()]
    # after a crash the rounds in flight were logged but not checkpointed: keep the last
    # log of each (round, device), and only rounds that have a checkpoint
    by_key = {(lg["round"], lg["device_id"]): lg for lg in logs}
    rows = []
    history = store.history()
    done = {c.round for c in history}
    for c in history:
        ev = c.metrics.get("evaluation", {})
        row: dict[str, Any] = {"round": c.round, "version": c.version, "sha256": c.sha256,
                               "note": c.note}
        row.update({k: float(v) for k, v in ev.items()})
        if c.round > 0:
            for k in ("participants", "rejected", "bytes_up", "bytes_down", "seconds"):
                row[k] = c.metrics.get(k)
            mine = [lg for (r, _), lg in by_key.items() if r == c.round and lg["payload_bytes"]]
            if mine:
                row["payload_bytes_per_device"] = float(np.mean([lg["payload_bytes"] for lg in mine]))
                row["wire_up_per_device"] = float(np.mean([lg["wire_up"] for lg in mine]))
        rows.append(row)
    done_logs = [lg for (r, _), lg in by_key.items() if r in done and r > 0]
    with_payload = [lg for lg in done_logs if lg["payload_bytes"]]
    dense = 4 * n_params
    summary: dict[str, Any] = {"head_params": n_params, "dense_float32_delta_bytes": dense}
    if with_payload:
        pay = float(np.mean([lg["payload_bytes"] for lg in with_payload]))
        msg = float(np.mean([lg["delta_message_bytes"] for lg in with_payload]))
        up = float(np.mean([lg["wire_up"] for lg in with_payload]))
        dw = float(np.mean([lg.get("delta_wire_bytes", 0) for lg in with_payload]))
        summary.update({
            "device_rounds": len(done_logs),
            "device_rounds_with_delta": len(with_payload),
            "replayed": sum(1 for lg in done_logs if lg["replayed"]),
            "replay_identical": sum(1 for lg in done_logs if lg["replay_match"]),
            "replay_mismatches": sum(1 for lg in done_logs
                                     if lg["replayed"] and not lg["replay_match"]),
            "payload_bytes_per_device_round": pay,
            "delta_message_bytes_per_device_round": msg,
            "delta_wire_bytes_per_device_round": dw,
            "wire_up_bytes_per_device_round": up,
            "delta_wire_reduction_vs_dense": dense / dw if dw else None,
            "payload_reduction_vs_dense": dense / pay,
            "wire_up_reduction_vs_dense": dense / up,
            "global_kinds": {k: sum(1 for lg in done_logs if lg["global_kind"] == k)
                             for k in ("full", "delta", "none")},
        })
    return rows, summary
