"""``fltiny run``: federated rounds with boards in the loop.

Two kinds of fleet. Emulated boards this process starts (``RunOptions.fleet``): firmware per
board (cached by the bundle's content hash + board), boards started (QEMU / native) with one
data blob each, which the host keeps to replay every round. Or boards that are already running
(``RunOptions.ports`` / ``fleet_file``: flashed boards on serial ports, ``fltiny emulate
--pty`` boards, Wi-Fi boards on TCP): each is identified by its first authenticated HELLO
(fltiny.bridge.ports: device id, key, board, model hash), before any heavy work, and the host
holds none of their data: their updates are verified without replay (fltiny.bridge.fleet).

The experiment builder (fltiny.experiment) gives the bundle, the strategy, the evaluator and
the store; the bridge's per-device figures (bytes, GLOBAL kind, how the DELTA was verified) go
into the run store with each device's row, so the report (metrics.json, metrics.csv,
metrics.png, run.sqlite) is made from the store alone, also after --resume. Every board this
process started is stopped at the end, on an error and on Ctrl-C / SIGTERM; every port it
opened is closed.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fltiny.errors import FltinyError, UsageError
from fltiny.experiment import Experiment, ExperimentResult, RunOptions
from fltiny.server.rounds import DeviceResult, RoundMetrics, TrainParams

if TYPE_CHECKING:
    from fltiny.boards import Board
    from fltiny.bridge.fleet import Endpoint
    from fltiny.bridge.link import Link
    from fltiny.bridge.ports import Probe
    from fltiny.broker.fleet import FleetBroker
    from fltiny.export.bundle import Bundle

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


# what a firmware build is made of besides the bundle: the C, the templates, the offline
# platforms and the Python that renders and generates them
FIRMWARE_INPUTS = ("firmware", "templates", "platforms", "fltiny/build", "fltiny/codegen")


def firmware_key(board, bundle_hash: str, repo: Path | None = None) -> str:
    """Cache key of a board's firmware: the bundle's content hash, the board file and every
    file of FIRMWARE_INPUTS under ``repo`` (default: this checkout), so a changed runtime or
    protocol never reuses an old ELF."""
    from fltiny.boards import REPO_ROOT

    root = repo or REPO_ROOT
    h = hashlib.sha256(bundle_hash.encode())
    files = [root / "boards" / f"{board.name}.toml"]
    for part in FIRMWARE_INPUTS:
        files += sorted(p for p in (root / part).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cached_firmware(board, bundle: Path, root: Path, say: Say, *, secagg: bool = False,
                    ram_budget: int | None = None) -> Path:
    """ELF for (bundle, board, firmware sources, secure aggregation or not, RAM budget):
    build/fw-cache/<board>-<key>[-secagg][-<budget>]/firmware.elf, built once
    (``firmware_key``). `secagg`: secure aggregation's device side compiled in (a ``--secagg``
    run); `ram_budget`: as ``fltiny build --ram-budget`` (firmware_features tells what it kept)."""
    from fltiny.build.firmware import build_firmware
    from fltiny.export.bundle import Bundle

    key = firmware_key(board, Bundle.load(bundle).content_hash)
    cache = Path(root).resolve() / "fw-cache" / (
        f"{board.name}-{key}" + ("-secagg" if secagg else "")
        + (f"-{ram_budget}" if ram_budget is not None else ""))
    elf = cache / "firmware.elf"
    if elf.is_file():
        say(f"reusing firmware {elf}")
        return elf
    say(f"building firmware for {board.name}")
    t0 = time.perf_counter()
    fw = build_firmware(board, bundle, cache / "project", secagg=secagg, ram_budget=ram_budget)
    shutil.copy2(fw.elf, elf)
    say(f"built {board.name} in {time.perf_counter() - t0:.1f} s")
    return elf


def firmware_features(elf: Path):
    """The round state a cached_firmware ELF carries (its project's fltiny_config.h)."""
    import re

    from fltiny.build.project import RoundFeatures

    config = (Path(elf).parent / "project" / "include" / "fltiny_config.h").read_text()
    on = {m[1].lower(): m[2] == "1" for m in
          re.finditer(r"#define FLT_APP_(FEEDBACK|DRIFT|PERSONAL) ([01])", config)}
    return RoundFeatures(**on)


def check_round_features(opts: RunOptions, drift: bool, board_name: str, elf: Path) -> None:
    """UsageError (one line) when the run asks a board for round state its firmware's RAM
    budget left out (fltiny.build.project.RoundFeatures): before any board starts."""
    feats = firmware_features(elf)
    train = opts.server.train
    need = [("error feedback", "--no-error-feedback", train.error_feedback and not feats.feedback
             and not opts.server.secagg),
            ("personal serving", "--no-personal", train.personal and not feats.personal),
            ("FedDyn drift", f"--strategy fedavg (not {opts.strategy})",
             drift and not feats.drift)]
    missing = [(what, fix) for what, fix, bad in need if bad]
    if missing:
        raise UsageError(f"--ram-budget {opts.ram_budget}: board {board_name}'s firmware leaves "
                         f"out {', '.join(w for w, _ in missing)} to fit; run with "
                         f"{' '.join(f for _, f in missing)} (or a larger --ram-budget)")


def secagg_side(opts: RunOptions, n_params: int, say: Say):
    """The bridge's secure aggregation (fltiny.bridge.secagg) of a ``--secagg`` run, else None."""
    if not opts.server.secagg:
        return None
    from fltiny.bridge.secagg import BridgeSecAgg, masked_k

    train = opts.server.train
    k = masked_k(n_params, train.topk_fraction)
    say(f"secure aggregation on the boards: {k} masked values per device "
        f"({opts.server.secagg_bits or 'auto'} bits), clip {opts.server.secagg_clip:g}, "
        f"dropout after MASKED {opts.secagg_dropout:g}")
    return BridgeSecAgg(n_params, k, opts.server.secagg_clip, opts.server.secagg_bits,
                        train.value_bits, opts.secagg_dropout, train.seed)


class FiguredFleet:
    """A BridgeFleet whose per-device RoundLog travels with each DeviceResult into the run
    store (``figures``), in the same transaction as the round's checkpoint."""

    def __init__(self, bridge) -> None:
        self.bridge = bridge

    def devices(self) -> list[int]:
        return self.bridge.devices()

    def set_training(self, device_id: int, enabled: bool) -> dict[str, object]:
        return self.bridge.set_training(device_id, enabled)

    def host_state(self):
        return self.bridge.host_state()

    @property
    def secagg(self):
        return self.bridge.secagg

    def secure_aggregate(self, round_: int):
        return self.bridge.secure_aggregate(round_)

    def run_round(self, round_: int, devices, global_params: np.ndarray, version: int,
                  train: TrainParams, mu: float, deadline_s: float) -> list[DeviceResult]:
        first = len(self.bridge.logs)
        results = self.bridge.run_round(round_, devices, global_params, version, train, mu,
                                        deadline_s)
        logs = {lg.device_id: lg for lg in self.bridge.logs[first:] if lg.round == round_}
        return [replace(r, figures={**r.figures, **asdict(logs[r.device_id])})
                if r.device_id in logs else r for r in results]


@dataclass
class PortBoard:
    """A running board found on a port: its authenticated HELLO and its board description."""

    probe: Probe
    board: Board

    def endpoint(self) -> Endpoint:
        """The bridge's endpoint: no data blob (nothing to replay); the probe's open link
        first, the port reopened after a link failure."""
        from fltiny.bridge.fleet import Endpoint
        from fltiny.bridge.link import open_link

        p = self.probe
        first: list[Link] = [p.link]

        def opener() -> Link:
            return first.pop() if first else open_link(p.port, timeout=2.0)

        return Endpoint(p.device_id, p.port, None, self.board.max_windows, p.key,
                        self.board.name, open=opener, running=True, hello=p.hello)


def stored_devices(store_path: Path) -> dict[int, dict[str, Any]]:
    """The per-device host records of the newest checkpoints in a run store (their meta:
    port, board, device id, key id, HELLO; fltiny.bridge.fleet), for ``--resume``."""
    from fltiny.bridge.fleet import decode_state
    from fltiny.server.store import RunStore

    store = RunStore.open_readonly(store_path)
    try:
        states = store.device_states()
    finally:
        store.close()
    out = {}
    for dev, blob in states.items():
        try:
            out[dev] = decode_state(blob)[0]
        except ValueError as exc:
            raise UsageError(f"--resume: the record of device {dev} in {store_path} cannot be "
                             f"read ({exc}): start a new run (another --out)") from None
    return out


def known_boards(opts: RunOptions, records: dict[int, dict[str, Any]], store_path: Path):
    """The boards a resumed run drove, by port (fltiny.bridge.ports.Known); UsageError, one
    line, when the store was written by another fleet than the one this run names."""
    from fltiny.bridge import messages as m
    from fltiny.bridge.ports import Known

    if not records:
        return {}
    started = sorted(d for d, r in records.items() if not r.get("running"))
    if opts.on_ports and started:
        raise UsageError(f"--resume: {store_path} was written by a run of boards it started "
                         "itself (--fleet / --board): resume it the same way, not with --port "
                         "/ --fleet-file")
    if not opts.on_ports:
        if not started:
            raise UsageError(f"--resume: {store_path} was written by a run of running boards "
                             "(--port / --fleet-file): resume it with the same ports")
        return {}
    had = sorted(r["url"] for r in records.values())
    now = sorted(w.port for w in opts.serial_devices())
    if had != now:
        raise UsageError(f"--resume: {store_path} was written by another fleet (boards on "
                         f"{', '.join(had)}; this run names {', '.join(now)}): resume with the "
                         "same --port / --fleet-file, or start a new run (another --out)")
    out = {}
    for r in records.values():
        hello = m.Hello.decode(bytes.fromhex(r["hello"])) if r.get("hello") else None
        if hello is not None:
            out[r["url"]] = Known(int(r["device_id"]), str(r["key_id"]), hello)
    return out


def restore_port_boards(found: list[PortBoard], bridges, store, say: Say) -> None:
    """A resumed run's boards carry on where the store's last checkpoint left them
    (``BridgeFleet.restore``): every board gets the store's sequence lease, and a re-attached
    one (no new HELLO) the host's state of it."""
    ids = [pb.probe.device_id for pb in found]
    starts = store.take_seq_leases(ids)
    states = store.device_states()
    for pb in found:
        dev = pb.probe.device_id
        bf = next(b for b in bridges if dev in b.device_ids())
        try:
            what = bf.restore(dev, states.get(dev) if pb.probe.reattached else None,
                              starts.get(dev))
        except ValueError as exc:
            raise UsageError(f"--resume: the record of device {dev} in {store.path} does not "
                             f"fit this run ({exc}): start a new run (another --out)") from None
        say(f"device {dev} ({pb.probe.port}): {what}")


def find_port_boards(opts: RunOptions, say: Say = print,
                     known: dict | None = None) -> list[PortBoard]:
    """Every board of ``opts.serial_devices()``, identified by its HELLO (UsageError, one
    line, for a port that is missing, silent, unauthenticated or holds a board other than the
    one named). Keys: the fleet file's, else the provisioning record's, else the development
    key. The links stay open (close them with ``close_port_boards``)."""
    from fltiny.boards import get_board
    from fltiny.bridge.ports import Credential, is_device_path, open_port, probe_all
    from fltiny.build.project import DEV_KEY
    from fltiny.provision import read_fleet_file, record_path

    wanted = opts.serial_devices()
    record = Path(opts.record) if opts.record is not None else record_path(opts.build_root)
    recorded = read_fleet_file(record, missing_ok=True, unique_ports=False)
    recorded_keys = [d.key for d in recorded if d.key is not None]
    keys = []
    for w in wanted:
        if w.key is not None:
            keys.append([w.key])
            continue
        mine = [d.key for d in recorded if d.key is not None
                and (d.port == w.port or (w.device_id is not None
                                          and d.device_id == w.device_id))]
        keys.append(list(dict.fromkeys([*mine, *recorded_keys, DEV_KEY])))
    # who may be on each port, to ask a board that answered an earlier run for a new HELLO
    pokes = []
    for w, ks in zip(wanted, keys, strict=True):
        creds = [Credential(w.device_id, k) for k in ks] if w.device_id is not None else []
        creds += [Credential(d.device_id, d.key) for d in recorded
                  if d.key is not None and d.device_id is not None
                  and (d.port == w.port or d.device_id == w.device_id)]
        pokes.append(list(dict.fromkeys(creds)))
    for w in wanted:  # a missing port is refused before anything is opened
        if is_device_path(w.port) and not Path(w.port).exists():
            open_port(w.port)
    say(f"waiting for the HELLO of {len(wanted)} running board(s): "
        + ", ".join(w.port for w in wanted))
    probes = probe_all([w.port for w in wanted], keys, opts.hello_timeout, known=known,
                       pokes=pokes)
    found: list[PortBoard] = []
    try:
        owners = {d.key: d.device_id for d in recorded if d.key is not None and d.key != DEV_KEY}
        ids: dict[int, str] = {}
        for w, p in zip(wanted, probes, strict=True):
            if w.device_id is not None and p.device_id != w.device_id:
                raise UsageError(f"--port {p.port}: the board is device {p.device_id}, the "
                                 f"fleet file says device {w.device_id}")
            owner = owners.get(p.key)
            if owner is not None and owner != p.device_id:
                raise UsageError(f"--port {p.port}: the board says it is device {p.device_id} "
                                 f"but holds the key recorded for device {owner}: re-flash it")
            if p.key == DEV_KEY and p.device_id in owners.values():
                raise UsageError(f"--port {p.port}: device {p.device_id} has its own key in "
                                 f"{record}, but this board authenticated with the public "
                                 "development key: re-flash it ('fltiny flash --device-id "
                                 f"{p.device_id}') or remove it from the record")
            if p.device_id in ids:
                raise UsageError(f"--port {p.port} and {ids[p.device_id]} hold the same device "
                                 f"id {p.device_id}: give each board its own ('fltiny flash "
                                 "--device-id N')")
            ids[p.device_id] = p.port
            if w.board is not None and w.board != p.hello.name:
                raise UsageError(f"--port {p.port}: the board says it is '{p.hello.name}', not "
                                 f"{w.board}")
            try:
                board = get_board(w.board or p.hello.name)
            except UsageError:
                raise UsageError(f"--port {p.port}: the board says it is '{p.hello.name}', not a "
                                 "board fltiny knows; pass --board (see 'fltiny boards')") from None
            found.append(PortBoard(p, board))
            say(f"{p.port}: device {p.device_id}, {board.name}, "
                + ("no new HELLO: the board of the run being resumed" if p.reattached
                   else f"model version {p.hello.model_version}"))
    except BaseException:
        for p in probes:
            p.link.close()
        raise
    return found


def check_port_boards(found: list[PortBoard], bundle: Bundle, n_params: int) -> None:
    """Each board runs this bundle's model (its HELLO's model hash and head size)."""
    for pb in found:
        h, p = pb.probe.hello, pb.probe
        if h.model_hash != bundle.model_hash:
            raise UsageError(f"--port {p.port}: device {p.device_id} runs another model (hash "
                             f"{h.model_hash.hex()}, the bundle's {bundle.model_hash.hex()}): "
                             f"flash it with this bundle ('fltiny flash --board {pb.board.name} "
                             f"--bundle {bundle.path}') or pass the bundle it runs (--bundle)")
        if h.head_params != n_params:
            raise UsageError(f"--port {p.port}: device {p.device_id} trains {h.head_params} "
                             f"parameters, the bundle's model {n_params}: flash it with this "
                             "bundle")


def close_port_boards(found: list[PortBoard]) -> None:
    for pb in found:
        pb.probe.link.close()


def check_secagg_fits(boards, n_params: int) -> None:
    """UsageError (one line) when a ``--secagg`` run's model leaves secure aggregation out of
    a board's firmware (fltiny.build.project.secagg_fits: at most an eighth of its RAM)."""
    from fltiny.build.project import secagg_fits, secagg_ram_bytes

    small = sorted({b.name for b, _n in boards if not secagg_fits(b, n_params)})
    if small:
        raise UsageError(f"--secagg: with {n_params:,} trained parameters secure aggregation "
                         f"needs {secagg_ram_bytes(n_params) // 1024} kB of RAM, more than an "
                         f"eighth of {', '.join(small)}'s, so their firmware leaves it out; use "
                         "a smaller model or bigger boards, or drop --secagg")


def run(opts: RunOptions, progress: Callable[[RoundMetrics], None] = lambda _m: None,
        say: Say = print, log: Say = print) -> ExperimentResult:
    from fltiny.boards import get_board
    from fltiny.bridge.fleet import BridgeFleet
    from fltiny.build.project import parse_ram_budget
    from fltiny.server.gateway import GatewayFleet, split_devices

    if opts.engine == "flower":  # flwr is imported on this path only
        from fltiny.flower.engine import run_flower

        return run_flower(opts, progress, say, log)
    if opts.per_board_models:
        raise UsageError("a model per board (--model auto / --board-model) runs one federation "
                         "per family: call fltiny.experiment.run_families")
    exp = Experiment(opts, opts.devices, say=say, log=log, data_on_devices=opts.on_ports)
    if exp.store_path.exists() and not opts.resume:
        exp.open_store(resume=False)  # refuses before any work
    boards = [] if opts.on_ports else [(get_board(name), n) for name, n in opts.fleet]
    for b, _ in boards:
        if not b.emulated:
            raise UsageError(f"board {b.name} is real hardware; 'fltiny run' starts emulated "
                             "boards (qemu-*, native): drive flashed boards with --port or "
                             "--fleet-file")
    mqtt_boards = mqtt_capable(opts, [b for b, _ in boards])
    # a resumed run knows its boards from the store (they say no new HELLO)
    known = (known_boards(opts, stored_devices(exp.store_path), exp.store_path)
             if opts.resume and exp.store_path.exists() else {})
    # running boards are identified first: a missing or silent port fails in seconds
    found = find_port_boards(opts, say, known) if opts.on_ports else []

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, _terminate)
    store = None
    try:
        with ExitStack() as stack:
            stack.callback(close_port_boards, found)
            bundle = exp.bundle
            if opts.server.secagg and boards:  # before any build: the model's secagg buffers
                check_secagg_fits(boards, bundle.head.n_params)
            hr = exp.host
            if found:
                check_port_boards(found, bundle, hr.n_params)
                counts = Counter(pb.board.name for pb in found)
            else:
                counts = Counter({b.name: n for b, n in boards})
                budget = parse_ram_budget(opts.ram_budget) if opts.ram_budget else None
                elfs = {b.name: cached_firmware(b, bundle.path, opts.build_root, say,
                                                secagg=opts.server.secagg, ram_budget=budget)
                        for b, _ in boards}
                if budget is not None:
                    drift = exp.strategy().drift
                    for name, elf in elfs.items():
                        check_round_features(opts, drift, name, elf)
                blobs = exp.blobs(opts.max_windows)
            exp.evaluator  # noqa: B018 - held-out backbone features before the rounds
            store = exp.open_store(opts.resume)
            if found:
                endpoints = [pb.endpoint() for pb in found]
                say(f"{len(found)} running board(s); the host holds none of their data: "
                    "updates are verified without replay")
            else:
                fb = None
                if mqtt_boards:
                    from fltiny.broker.fleet import FleetBroker

                    fleet_dir = Path(opts.broker_dir or Path(opts.out) / "broker")
                    fb = stack.enter_context(FleetBroker(fleet_dir, url=opts.mqtt_url, say=say))
                endpoints = start_emulated(stack, boards, elfs, blobs, say, fb)
            lock = threading.Lock()  # one HostRound replays for every gateway
            secagg = secagg_side(opts, hr.n_params, say)
            by_id = {e.device_id: e for e in endpoints}
            groups = split_devices(list(by_id), opts.gateways)
            bridges = [BridgeFleet([by_id[i] for i in ids], hr, model_hash=bundle.model_hash,
                                   global_delta=opts.global_delta,
                                   down_topk=opts.server.down_topk,
                                   down_bits=opts.server.down_bits,
                                   send_chunk=opts.send_chunk, log=log, replay_lock=lock,
                                   secagg=secagg)
                       for ids in groups]
            for bf in bridges:
                stack.callback(bf.close)
            if found and opts.resume:
                restore_port_boards(found, bridges, store, say)
            if opts.gateways > 1:
                say(f"{opts.gateways} gateway bridges: "
                    + "; ".join(f"gateway {g}: devices {ids[0]}-{ids[-1]}"
                                for g, ids in enumerate(groups)))
                fleet: Any = GatewayFleet([FiguredFleet(bf) for bf in bridges])
            else:
                fleet = FiguredFleet(bridges[0])
            metrics = exp.run_rounds(fleet, store, progress)
            replays = sum(bf.replays for bf in bridges)
            mismatches = sum(bf.replay_mismatches for bf in bridges)
        rows, summary = collect(store, hr.n_params)
        try:  # an estimate: a model or board it cannot price leaves the run's report intact
            summary["energy"] = energy_of_run(store, endpoints, bundle.path,
                                              opts.server.train.epochs)
        except FltinyError as exc:
            log(f"energy estimate not available: {exc}")
            summary["energy"] = []
        summary.update({
            "fleet": dict(counts),
            "devices_without_host_data": sum(1 for e in endpoints if e.blob is None),
            "replays_this_process": replays, "replay_mismatches_this_process": mismatches,
            "title": f"{bundle.name} on {opts.data.dataset}: "
                     + ", ".join(f"{n} x {b}" for b, n in counts.items())
                     + (" (running boards on ports)" if found else ""),
        })
        return exp.result(store, metrics, summary, rows)
    finally:
        if store is not None:
            store.close()
        signal.signal(signal.SIGTERM, old_term)


MQTT_PORTS = ("native",)  # firmware ports with an MQTT client that `fltiny run` can start


def mqtt_capable(opts: RunOptions, boards: list[Board]) -> list[Board]:
    """The boards of the run that go through the broker (``--transport mqtt``): those with an
    MQTT client; the others keep their serial link. UsageError when none can."""
    if opts.transport != "mqtt":
        if opts.mqtt_url or opts.broker_dir is not None:
            raise UsageError("--mqtt-url / --broker-dir need --transport mqtt")
        return []
    if opts.on_ports:
        raise UsageError("--transport mqtt applies to the boards 'fltiny run' starts (--fleet); "
                         "boards given by --port / --fleet-file keep their own links")
    able = [b for b in boards if b.port in MQTT_PORTS]
    if not able:
        raise UsageError(f"--transport mqtt: none of the boards ({', '.join(b.name for b in boards)})"
                         " has an MQTT client; native boards do (e.g. --fleet native=4, or "
                         "--fleet qemu-m4f=2,native=2 for a mixed fleet)")
    return able


def start_emulated(stack: ExitStack, boards, elfs, blobs, say: Say,
                    broker: FleetBroker | None = None) -> list[Endpoint]:
    """Start the emulated boards, each with its data blob (kept by the host for the replay);
    with a broker, the boards that have an MQTT client join it instead of a serial socket."""
    from fltiny.bridge.fleet import Endpoint
    from fltiny.broker.topics import device_user
    from fltiny.build.project import DEV_KEY
    from fltiny.devices import start_fleet

    endpoints = []
    i = 0
    for b, n in boards:
        mine = [blob.limited(b.max_windows) for blob in blobs[i:i + n]]
        i += n
        via = broker if broker is not None and b.port in MQTT_PORTS else None
        say(f"starting {n} x {b.name}" + (f" on MQTT ({via.host}:{via.port})" if via else ""))
        fleet = stack.enter_context(start_fleet(b, elfs[b.name], [x.encode() for x in mine],
                                                mqtt=via.identity if via else None))
        for dev, blob in zip(fleet.devices, mine, strict=True):
            if via is not None:
                hub = via.hub
                assert hub is not None
                endpoints.append(Endpoint(
                    dev.device_id, f"mqtt://{device_user(dev.device_id)}", blob, b.max_windows,
                    DEV_KEY, b.name, open=lambda i=dev.device_id, h=hub: h.open(i, timeout=2.0)))
            else:
                endpoints.append(Endpoint(dev.device_id, f"tcp://{dev.endpoint}", blob,
                                          b.max_windows, DEV_KEY, b.name))
    return endpoints


def energy_of_run(store, endpoints, bundle: Path, epochs: int) -> list[dict[str, Any]]:
    """The estimated energy per device-round of each board in the run
    (fltiny.report.energy.run_energy), from the device-rounds in the run store. The link of an
    emulated board is its serial UART; a running board reached over TCP or MQTT is on Wi-Fi."""
    from fltiny.boards import get_board
    from fltiny.report.energy import DeviceRound, run_energy

    def transport(e) -> str:
        if not e.board or get_board(e.board).emulated:
            return "uart"
        return "wifi-tcp" if e.url.startswith(("tcp://", "mqtt://")) else "uart"

    by_id = {e.device_id: (e.board, transport(e)) for e in endpoints if e.board}
    rounds = [DeviceRound(by_id[u["device_id"]][0], by_id[u["device_id"]][1], u["round"],
                          int(u["num_examples"] or 0), int(u["bytes_up"] or 0),
                          int(u["bytes_down"] or 0))
              for u in store.updates() if u["round"] > 0 and u["device_id"] in by_id]
    return run_energy(rounds, bundle, epochs)


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
    checks = [lg for lg in done_logs if lg.get("self_check")]
    if checks:  # devices whose self-check of a GLOBAL failed: they serve the factory model
        summary["self_check_reverts"] = len(checks)
        summary["self_check_replayed"] = sum(1 for lg in checks
                                             if lg["self_check"] == "replayed")
        summary["self_check_mismatches"] = sum(1 for lg in checks
                                               if lg["self_check"] == "mismatch")
    if with_payload:
        pay = float(np.mean([lg["payload_bytes"] for lg in with_payload]))
        msg = float(np.mean([lg["delta_message_bytes"] for lg in with_payload]))
        up = float(np.mean([lg["wire_up"] for lg in with_payload]))
        dw = float(np.mean([lg.get("delta_wire_bytes", 0) for lg in with_payload]))
        summary.update({
            "device_rounds": len(done_logs),
            "device_rounds_with_delta": len(with_payload),
            "replayed": sum(1 for lg in done_logs if lg["replayed"]),
            # how each DELTA was verified (stores written before "verification": replay only)
            "replay_verified": sum(1 for lg in done_logs
                                   if lg.get("verification", "replay" if lg["replay_match"]
                                             else "") == "replay"),
            "not_replay_verified": sum(1 for lg in done_logs
                                       if lg.get("verification") == "checks"),
            # local DP: everything but the payload's noise replayed
            "replay_metadata_verified": sum(1 for lg in done_logs
                                            if lg.get("verification") == "replay-metadata"),
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
