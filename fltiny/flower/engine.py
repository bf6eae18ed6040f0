"""``fltiny run --engine flower --gateways G``: the run on a real Flower SuperLink and one
SuperNode per gateway (fltiny.flower for who runs where).

The engine builds the firmware, starts the emulated boards and saves each board's data blob
(the gateways replay every DELTA with it), writes each gateway service's spec, and has
fltiny.flower.deploy start the G gateway services, a ``flower-superlink`` (insecure,
127.0.0.1, a free port, its own SQLite state under OUT/flower) and G ``flower-supernode``
processes (node config: the gateway and its spec), and submit the Flower run (a FAB built in
memory, the Control API's StartRun; runtime dependency installation off: the apps run in
this environment). The ServerApp's events (its say / log lines, each round's metrics) are shown as
they come; a SuperNode that dies is started again (its gateway's devices miss the rounds it
was away); every process of the run is stopped at the end, on an error and on Ctrl-C /
SIGTERM (fltiny.flower.procs). The report is made from the run store the ServerApp wrote.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from fltiny.errors import FltinyError, ToolchainError, UsageError
from fltiny.experiment import Experiment, ExperimentResult, RunOptions
from fltiny.flower.deploy import QUERY_TIMEOUT_S, FlowerRun, check_flower_binaries
from fltiny.flower.procs import port_busy
from fltiny.flower.service import EndpointSpec, GatewaySpec
from fltiny.flower.spec import Events, RunSpec, options_json, save_blob
from fltiny.server.rounds import RoundMetrics

Say = Callable[[str], None]
STARTUP_S = 300.0  # the ServerApp's set-up (held-out features) before the first round


def write_gateway_specs(fdir: Path, bundle: Path, groups: list[list[int]], by_id: dict,
                        opts: RunOptions) -> list[tuple[GatewaySpec, Path]]:
    """Each gateway service's spec (OUT/flower/gateway-G.json): its boards, their data blobs
    (OUT/flower/blobs, for the replay), the bridge settings and the service key."""
    key = fdir / "service.key"
    key.touch(mode=0o600)
    key.write_bytes(secrets.token_bytes(32))
    (fdir / "blobs").mkdir(exist_ok=True)
    specs: list[tuple[GatewaySpec, Path]] = []
    for g, ids in enumerate(groups):
        eps = []
        for i in ids:
            e = by_id[i]
            blob = None
            if e.blob is not None:
                blob = (fdir / "blobs" / f"device-{i}.npz").resolve()
                save_blob(e.blob, blob)
            eps.append(EndpointSpec(i, e.url, e.board, e.max_windows, e.key.hex(),
                                    None if blob is None else str(blob)))
        spec = GatewaySpec(g, str(bundle.resolve()), tuple(eps), opts.global_delta,
                           opts.server.down_topk, opts.server.down_bits, opts.send_chunk,
                           str(key.resolve()), str((fdir / f"gateway-{g}.ready").resolve()))
        path = (fdir / f"gateway-{g}.json").resolve()
        spec.save(path)
        specs.append((spec, path))
    return specs


def run_flower(opts: RunOptions, progress: Callable[[RoundMetrics], None] = lambda _m: None,
               say: Say = print, log: Say = print) -> ExperimentResult:
    from fltiny.boards import get_board
    from fltiny.run.runner import cached_firmware, collect, energy_of_run, start_emulated
    from fltiny.server.gateway import split_devices
    from fltiny.server.store import RunStore

    exp = Experiment(opts, opts.devices, say=say, log=log)
    if exp.store_path.exists():
        raise UsageError(f"{exp.store_path} exists: --engine flower starts a new run (it has no "
                         "--resume); choose another --out")
    check_flower_binaries()
    if opts.superlink_port and port_busy(opts.superlink_port):  # before any work
        raise UsageError(f"--superlink-port {opts.superlink_port}: the port is in use on "
                         "127.0.0.1; pass another (0: a free one)")
    boards = [(get_board(name), n) for name, n in opts.fleet]
    for b, _ in boards:
        if not b.emulated:
            raise UsageError(f"board {b.name} is real hardware; 'fltiny run' starts emulated "
                             "boards (qemu-*, native)")

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, _terminate)
    metrics: list[RoundMetrics] = []
    try:
        with ExitStack() as stack:
            bundle = exp.bundle
            n_params = exp.host.n_params
            elfs = {b.name: cached_firmware(b, bundle.path, opts.build_root, say)
                    for b, _ in boards}
            blobs = exp.blobs(opts.max_windows)
            fdir = Path(opts.out) / "flower"
            fdir.mkdir(parents=True, exist_ok=True)
            for stale in fdir.glob("*.ready"):
                stale.unlink()
            endpoints = start_emulated(stack, boards, elfs, blobs, say)
            by_id = {e.device_id: e for e in endpoints}
            groups = split_devices(list(by_id), opts.gateways)
            specs = write_gateway_specs(fdir, Path(bundle.path), groups, by_id, opts)
            say(f"{opts.gateways} gateways: "
                + "; ".join(f"gateway {g}: devices {ids[0]}-{ids[-1]}"
                            for g, ids in enumerate(groups)))
            events = Events(fdir / "events.jsonl")
            if events.path.exists():
                events.path.unlink()
            # the ServerApp uses this very bundle (no second lookup or export)
            settled = replace(opts, data=replace(opts.data, bundle=Path(bundle.path)))
            run_spec = RunSpec(options_json(settled), groups, str(events.path.resolve()),
                               QUERY_TIMEOUT_S)
            spec_path = (fdir / "run.json").resolve()
            run_spec.save(spec_path)

            fr = FlowerRun(fdir, opts.superlink_port, say, log)
            stack.callback(fr.stop)
            fr.start_services(specs)
            fr.start_superlink()
            fr.start_supernodes([p for _, p in specs])
            fr.submit(spec_path)
            metrics = _follow(fr, events, opts, progress, say, log)
        store = RunStore(exp.store_path)
        try:
            rows, summary = collect(store, n_params)
            summary["energy"] = energy_of_run(store, endpoints, Path(bundle.path),
                                              opts.server.train.epochs)
            summary.update({
                "engine": "flower", "flower_run_id": fr.run_id,
                "supernode_restarts": {sn.gateway: sn.restarts for sn in fr.supernodes},
                "fleet": {b.name: n for b, n in boards},
                "devices_without_host_data": 0,
                "title": f"{bundle.name} on {opts.data.dataset}: "
                         + ", ".join(f"{n} x {b.name}" for b, n in boards)
                         + f" (Flower: {opts.gateways} SuperNodes)",
            })
            return exp.result(store, metrics, summary, rows)
        finally:
            store.close()
    finally:
        signal.signal(signal.SIGTERM, old_term)


def _follow(fr: FlowerRun, events: Events, opts: RunOptions,
            progress: Callable[[RoundMetrics], None], say: Say, log: Say) -> list[RoundMetrics]:
    """Show the ServerApp's events until it is done; supervise the processes meanwhile."""
    budget = STARTUP_S + opts.server.rounds * (opts.server.deadline_s + 2 * QUERY_TIMEOUT_S + 30)
    end = time.monotonic() + budget
    offset = 0
    metrics: list[RoundMetrics] = []
    last_status = time.monotonic()
    while True:
        lines, offset = events.read_from(offset)
        for e in lines:
            kind = e["kind"]
            if kind == "say":
                say(e["text"])
            elif kind == "log":
                log(e["text"])
            elif kind == "round":
                m = RoundMetrics(**e["metrics"])
                if m.round > 0:
                    metrics.append(m)
                progress(m)
            elif kind == "error":
                if e.get("trace"):
                    log(e["trace"])
                raise FltinyError(f"the Flower ServerApp stopped: {e['text']}")
            elif kind == "done":
                return metrics
        fr.supervise()
        if time.monotonic() - last_status > 5.0:
            last_status = time.monotonic()
            status, sub, details = fr.run_status()
            if status == "finished":
                pending, _ = events.read_from(offset)
                if any(e["kind"] in ("done", "error") for e in pending):
                    continue  # handled on the next pass
                raise ToolchainError(f"the Flower run ended ({sub}{': ' + details if details else ''})"
                                     f" before the ServerApp reported: see "
                                     f"{fr.fdir / 'superlink.log'}")
        if time.monotonic() > end:
            raise ToolchainError(f"the Flower run did not finish within {budget:g} s (logs in "
                                 f"{fr.fdir})")
        time.sleep(0.3)

