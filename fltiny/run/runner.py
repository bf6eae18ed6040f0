"""``fltiny run``: federated rounds with emulated boards in the loop.

The experiment builder (fltiny.experiment) gives the bundle, the data blobs, the strategy, the
evaluator and the store; this module adds what is particular to boards: firmware per board
(cached by the bundle's content hash + board), boards started (QEMU / native), BridgeFleet,
and the byte / replay accounting. The bridge's per-device figures go into the run store with
each device's row, so the report (metrics.json, metrics.csv, metrics.png, run.sqlite) is made
from the store alone, also after --resume. Every board is stopped at the end, on an error and
on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.errors import UsageError
from fltiny.experiment import Experiment, ExperimentResult, RunOptions
from fltiny.server.rounds import DeviceResult, RoundMetrics, TrainParams

Say = Callable[[str], None]

__all__ = ["RunOptions", "cached_firmware", "parse_fleet", "run"]


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


def cached_firmware(board, bundle: Path, root: Path, say: Say) -> Path:
    """ELF for (bundle, board): build/fw-cache/<board>-<bundle hash>/firmware.elf, built once."""
    from fltiny.build.firmware import build_firmware
    from fltiny.export.bundle import Bundle

    key = Bundle.load(bundle).content_hash[:16]
    cache = Path(root).resolve() / "fw-cache" / f"{board.name}-{key}"
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


class FiguredFleet:
    """A BridgeFleet whose per-device RoundLog travels with each DeviceResult into the run
    store (``figures``), in the same transaction as the round's checkpoint."""

    def __init__(self, bridge) -> None:
        self.bridge = bridge

    def devices(self) -> list[int]:
        return self.bridge.devices()

    def run_round(self, round_: int, devices, global_params: np.ndarray, version: int,
                  train: TrainParams, mu: float, deadline_s: float) -> list[DeviceResult]:
        first = len(self.bridge.logs)
        results = self.bridge.run_round(round_, devices, global_params, version, train, mu,
                                        deadline_s)
        logs = {lg.device_id: lg for lg in self.bridge.logs[first:] if lg.round == round_}
        return [replace(r, figures={**r.figures, **asdict(logs[r.device_id])})
                if r.device_id in logs else r for r in results]


def run(opts: RunOptions, progress: Callable[[RoundMetrics], None] = lambda _m: None,
        say: Say = print, log: Say = print) -> ExperimentResult:
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet, Endpoint
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import start_fleet

    exp = Experiment(opts, opts.devices, say=say, log=log)
    if exp.store_path.exists() and not opts.resume:
        exp.open_store(resume=False)  # refuses before any work
    boards = [(get_board(name), n) for name, n in opts.fleet]
    for b, _ in boards:
        if not b.emulated:
            raise UsageError(f"board {b.name} is real hardware; 'fltiny run' starts emulated "
                             "boards (qemu-*, native)")
    bundle = exp.bundle
    elfs = {b.name: cached_firmware(b, bundle.path, opts.build_root, say) for b, _ in boards}
    blobs = exp.blobs()
    hr = exp.host
    exp.evaluator  # noqa: B018 - backbone features of the held-out windows before the boards start

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, _terminate)
    store = exp.open_store(opts.resume)
    try:
        with ExitStack() as stack:
            endpoints = []
            i = 0
            for b, n in boards:
                mine = blobs[i:i + n]
                i += n
                mine = [blob.limited(b.max_windows) for blob in mine]
                raw = [blob.encode() for blob in mine]
                say(f"starting {n} x {b.name}")
                fleet = stack.enter_context(start_fleet(b, elfs[b.name], raw))
                for dev, blob in zip(fleet.devices, mine, strict=True):
                    endpoints.append(Endpoint(dev.device_id, f"tcp://{dev.endpoint}", blob,
                                              b.max_windows, DEV_KEY, b.name))
            bf = BridgeFleet(endpoints, hr, model_hash=bundle.model_hash,
                             global_delta=opts.global_delta, down_topk=opts.server.down_topk,
                             down_bits=opts.server.down_bits,
                             send_chunk=opts.send_chunk, log=log)
            stack.callback(bf.close)
            metrics = exp.run_rounds(FiguredFleet(bf), store, progress)
            replays, mismatches = bf.replays, bf.replay_mismatches
        rows, summary = collect(store, hr.n_params)
        summary.update({
            "fleet": {name: n for name, n in opts.fleet},
            "replays_this_process": replays, "replay_mismatches_this_process": mismatches,
            "title": f"{bundle.name} on {opts.data.dataset}: "
                     + ", ".join(f"{n} x {b}" for b, n in opts.fleet),
        })
        return exp.result(store, metrics, summary, rows)
    finally:
        store.close()
        signal.signal(signal.SIGTERM, old_term)


def collect(store, n_params: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-round rows and the byte / replay summary, from the run store alone: the bridge's
    per-device figures are stored with each device's row (only checkpointed rounds have any)."""
    from fltiny.report import round_rows

    rows = round_rows(store)
    logs = [u["figures"] for u in store.updates() if u["figures"]]
    for row in rows:
        mine = [lg for lg in logs if lg["round"] == row["round"] and lg["payload_bytes"]]
        if row["round"] > 0 and mine:
            row["payload_bytes_per_device"] = float(np.mean([lg["payload_bytes"] for lg in mine]))
            row["wire_up_per_device"] = float(np.mean([lg["wire_up"] for lg in mine]))
    done_logs = [lg for lg in logs if lg["round"] > 0]
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
