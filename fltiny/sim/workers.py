"""A simulated fleet spread over worker processes: each worker holds a share of the devices
(their data, their state between rounds, what the host tracks of them) in a SimFleet of its
own and runs their rounds through its own copy of the firmware's C (the host library keeps
static buffers, so one library cannot serve two threads). The parent sends each worker the
round's global model and TRAIN settings and gets back its devices' results, which it returns
in the order the round loop asked for them: the round loop, the strategy and the run store see
exactly what one SimFleet would give them, byte for byte, for any number of workers.

Workers are forked, so they share the parent's data and library pages (copy on write) and
cost no start-up; they ignore Ctrl-C (the parent handles it and closes them) and exit when the
parent says stop or its end of their pipe closes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from fltiny.errors import FltinyError
from fltiny.server.rounds import DeviceResult, TrainParams
from fltiny.sim.fleet import SimFleet, online_devices

MIN_DEVICES_PER_WORKER = 32  # below this the pipes cost more than the second core gives


def default_workers(clients: int) -> int:
    """One worker per CPU core this process may use, while each gets a fair share of devices."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, clients // MIN_DEVICES_PER_WORKER))


def _serve(conn: Connection, fleet: SimFleet) -> None:
    """A worker's loop: one request, one reply, until the parent hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:  # the parent is done
            return
        try:
            reply: Any = ("ok", fleet.run_round(*request))
        except FltinyError as exc:
            reply = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported by the parent in one line
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class WorkerFleet:
    """``Fleet`` of simulated devices dealt round-robin over ``workers`` processes, each a
    SimFleet made by ``make(blobs)``; churn is drawn here over the whole fleet, by the rule
    SimFleet uses, so the devices online each round do not depend on the number of workers."""

    def __init__(self, blobs: Sequence, make: Callable[[list], SimFleet], workers: int,
                 churn: float = 0.0, seed: int = 0) -> None:
        if workers < 2:
            raise ValueError("a WorkerFleet needs 2 or more workers")
        self.churn = churn
        self.seed = seed
        self._round = 0
        self._ids = sorted(b.device_id for b in blobs)
        shares: list[list] = [[] for _ in range(workers)]
        for i, blob in enumerate(sorted(blobs, key=lambda b: b.device_id)):
            shares[i % workers].append(blob)
        self._of: dict[int, int] = {}
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        ctx = mp.get_context("fork")
        try:
            for w, share in enumerate(shares):
                for b in share:
                    self._of[b.device_id] = w
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child, make(share)), daemon=True,
                                   name=f"fltiny-sim-{w}")
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def devices(self) -> list[int]:
        return online_devices(self._ids, self.churn, self.seed, self._round)

    def run_round(self, round_: int, devices: Sequence[int], global_params: np.ndarray,
                  version: int, train: TrainParams, mu: float,
                  deadline_s: float) -> list[DeviceResult]:
        self._round = round_
        mine: list[list[int]] = [[] for _ in self._conns]
        for d in devices:
            mine[self._of[d]].append(d)
        asked = [w for w, ds in enumerate(mine) if ds]
        for w in asked:
            try:
                self._conns[w].send((round_, mine[w], global_params, version, train, mu,
                                     deadline_s))
            except OSError:  # BrokenPipeError: it is gone
                raise self._died(w, round_) from None
        by_id: dict[int, DeviceResult] = {}
        errors = []
        for w in asked:
            try:
                status, body = self._conns[w].recv()
            except (EOFError, OSError):
                raise self._died(w, round_) from None
            if status != "ok":
                errors.append(f"worker {w}: {body}")
                continue
            by_id.update((r.device_id, r) for r in body)
        if errors:
            raise FltinyError(f"round {round_} failed in a simulation worker: {errors[0]}")
        return [by_id[d] for d in devices]

    def _died(self, w: int, round_: int) -> FltinyError:
        self._procs[w].join(timeout=1)
        code = self._procs[w].exitcode
        return FltinyError(f"simulation worker {w} died (exit code {code}) in round {round_}; "
                           "try --workers 1")

    def close(self) -> None:
        for conn in self._conns:  # forked workers hold copies of these ends: say stop, not EOF
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            conn.close()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._conns, self._procs = [], []

    def __enter__(self) -> WorkerFleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
