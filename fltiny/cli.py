"""The ``fltiny`` command line. One place for output and failure: every FltinyError becomes a
one-line message and its exit code; nothing heavy (TensorFlow) is imported at start-up."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fltiny import __version__
from fltiny.errors import FltinyError, ToolchainError, UsageError
from fltiny.experiment import ExperimentResult, ExperimentSettings, RunOptions, SimConfig
from fltiny.server.config import Knob, from_knobs, knob_fields

if TYPE_CHECKING:
    from fltiny.boards import Board
    from fltiny.build.project import StoreLayout

log = logging.getLogger("fltiny")


def say(message: str) -> None:
    click.echo(message)


def progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


class FltinyGroup(click.Group):
    """Maps FltinyError to a one-line message and the error's exit code."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FltinyError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except click.UsageError as exc:  # bad option values: one line, before any work
            where = exc.ctx.command_path if exc.ctx else "fltiny"
            text = exc.format_message().rstrip(".")
            click.echo(f"error: {text[:1].lower()}{text[1:]}; see '{where} --help'", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug: say so in one line, full traceback with -vv
            if log.isEnabledFor(logging.DEBUG):
                raise
            click.echo(f"error: internal error {type(exc).__name__}: {exc} "
                       "(a bug in fltiny; rerun with -vv for the traceback)", err=True)
            sys.exit(70)


@click.group(cls=FltinyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fltiny")
@click.option("-v", "--verbose", count=True, help="More output (-vv: debug, with commands run).")
def main(verbose: int) -> None:
    """fltiny: tiny models, int8 export, on-device training and federated rounds for MCUs."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@main.command("datasets")
def datasets_cmd() -> None:
    """List the offline datasets and their default scenarios."""
    from fltiny.data import DATASETS

    for name, loader in DATASETS.items():
        d = loader()
        s = d.scenario
        say(f"{name:11s} {d.task:14s} {len(d.x):6d} samples, shape {list(d.input_shape)}, "
            f"groups: factory {s.factory[0]}-{s.factory[-1]}, fleet {s.fleet[0]}-{s.fleet[-1]}, "
            f"holdout {s.holdout[0]}-{s.holdout[-1]}  ({d.description})")


@main.command("models")
@click.option("--measure", is_flag=True,
              help="Build each variant and convert it to int8 to print parameters and size.")
def models_cmd(measure: bool) -> None:
    """List the model zoo (with --measure: parameters and int8 size per variant)."""
    from fltiny.models import ZOO

    if not measure:
        for m in ZOO.values():
            say(f"{m.name:15s} {m.dataset:11s} {m.description}")
        return
    from fltiny.models.measure import measure_zoo

    say(f"{'model':15s} {'params':>8s} {'head':>6s} {'int8 backbone':>14s} {'head f32':>9s} {'total':>8s}")
    for row in measure_zoo(progress):
        say(f"{row.name:15s} {row.params:8d} {row.head_params:6d} {row.backbone_bytes:14d} "
            f"{row.head_bytes:9d} {row.total_bytes:8d}")


def _train_options(f):
    f = click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=64,
                     show_default=True)(f)
    f = click.option("--lr", "learning_rate", type=float, default=3e-3, show_default=True)(f)
    f = click.option("--seed", type=int, default=0, show_default=True)(f)
    return f


@main.command("train")
@click.option("--model", "model_name", required=True, help="Zoo model name (see 'fltiny models').")
@click.option("--dataset", default=None, help="Dataset (default: the model's own).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Directory for model.keras and training.json.")
@click.option("--train-on", type=click.Choice(["factory", "factory+fleet"]), default="factory",
              show_default=True, help="Which groups to train on; held-out groups are never used.")
@_train_options
def train_cmd(model_name: str, dataset: str | None, out: Path, train_on: str, epochs: int,
              batch_size: int, learning_rate: float, seed: int) -> None:
    """Train a zoo model centrally in float: the initial global model."""
    from fltiny.train import TrainConfig
    from fltiny.workflow import train_zoo_model

    cfg = TrainConfig(epochs, batch_size, learning_rate, seed, train_on)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    path, report = train_zoo_model(model_name, dataset, out, cfg, progress)
    say(f"trained {model_name} on {report.dataset} ({report.train_on}, {report.train_samples} "
        f"samples) in {time.perf_counter() - t0:.1f} s: held-out {report.holdout_metric} "
        f"{report.holdout_value:.4f}; saved {path}")


@main.command("export")
@click.option("--model", "model_name", default=None, help="Zoo model name (trained if needed).")
@click.option("--keras", "keras_path", type=click.Path(path_type=Path), default=None,
              help="Your own .keras model instead of a zoo model.")
@click.option("--dataset", default=None, help="Dataset for representative and held-out data.")
@click.option("--rep-data", type=click.Path(path_type=Path), default=None,
              help="Representative inputs (.npy, already normalised), for --keras.")
@click.option("--eval-data", type=click.Path(path_type=Path), default=None,
              help="Held-out inputs (.npy) for the int8-versus-float check.")
@click.option("--eval-labels", type=click.Path(path_type=Path), default=None,
              help="Labels or targets (.npy) for --eval-data.")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None,
              help="Task of a --keras model (default: from its training.json, else classification).")
@click.option("--head-layers", type=int, default=None,
              help="Trainable head = last N dense layers (0: the whole model). Zoo default.")
@click.option("--train-convs", type=click.IntRange(min=0), default=None,
              help="Also train the last N Conv1D layers in float32 on the device (0: dense "
                   "head only). Zoo default.")
@click.option("--max-size", default="200kB", show_default=True, help="Size budget of the bundle.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Bundle directory.")
@_train_options
def export_cmd(model_name: str | None, keras_path: Path | None, dataset: str | None,
               rep_data: Path | None, eval_data: Path | None, eval_labels: Path | None,
               task: str | None, head_layers: int | None, train_convs: int | None,
               max_size: str, out: Path, epochs: int, batch_size: int, learning_rate: float,
               seed: int) -> None:
    """Export an int8 backbone + float32 head bundle, verified against TFLM."""
    from fltiny.export.pipeline import parse_size
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    if (model_name is None) == (keras_path is None):
        raise UsageError("give exactly one of --model (zoo) or --keras (your own model file)")
    limit = parse_size(max_size)
    t0 = time.perf_counter()
    result = export_bundle(
        model_name=model_name, keras_path=keras_path, dataset=dataset, rep_data=rep_data,
        eval_data=eval_data, eval_labels=eval_labels, task=task, head_layers=head_layers,
        train_convs=train_convs, max_size=limit, out=out,
        train_config=TrainConfig(epochs, batch_size, learning_rate, seed),
        progress=progress,
    )
    m = result.manifest
    q = result.quant
    say(f"exported {m.model} to {result.out} in {time.perf_counter() - t0:.1f} s")
    say(f"  size: {result.total_bytes} bytes (int8 backbone {result.backbone_bytes}, "
        f"float32 head {result.head_bytes}) of a {limit}-byte budget")
    if result.tflm is not None:
        t = result.tflm
        say(f"  TFLM vs LiteRT: {t.mismatches}/{t.elements} outputs differ "
            f"({t.mismatch_rate:.3%}), max {t.max_lsb} LSB")
    if result.c_check is not None:
        say(f"  {result.c_check}")
    if q.metric == "accuracy":
        say(f"  int8 vs float: {q.agreement:.2%} agreement on {q.samples} held-out samples; "
            f"accuracy float {q.float_value:.4f}, int8 {q.int8_value:.4f}")
    else:
        say(f"  int8 vs float: mean |difference| {q.agreement:.4f} on {q.samples} samples; "
            f"MAE float {q.float_value:.4f}, int8 {q.int8_value:.4f}")
    say(f"  files: {', '.join(str(p.relative_to(result.out)) for p in result.files)}")


# ---- boards, builds, devices (docs/boards.md) ------------------------------------------------

_BUNDLE_HELP = "Export bundle to build the firmware from (fltiny export ... --out DIR)."


def _bundle_option(f):
    return click.option("--bundle", type=click.Path(path_type=Path), default=Path("build/har-tiny"),
                        show_default=True, help=_BUNDLE_HELP)(f)


@main.command("boards")
def boards_cmd() -> None:
    """List the boards with their MCU, budgets, PlatformIO target and transports."""
    from fltiny.boards import human_bytes, load_boards

    say(f"{'board':10s} {'mcu':36s} {'clock':>8s} {'RAM':>7s} {'flash':>7s}  {'platformio':44s} "
        f"{'transports':14s} kind")
    for b in load_boards().values():
        clock = f"{b.clock_hz // 1_000_000} MHz" if b.clock_hz else "host"
        pio = f"{b.pio_platform}/{b.pio_board}" + (f"/{b.pio_framework}" if b.pio_framework else "")
        kind = ("emulated: " + b.emulator.get("machine", "")) if b.emulated else "real"
        say(f"{b.name:10s} {b.mcu[:36]:36s} {clock:>8s} {human_bytes(b.ram_bytes):>7s} "
            f"{human_bytes(b.flash_bytes):>7s}  {pio:44s} {','.join(b.transports):14s} {kind}")


def _build(board_name: str, bundle: Path, out: Path | None, render_only: bool = False, **kw):
    from fltiny.boards import get_board
    from fltiny.build.firmware import build_firmware

    board = get_board(board_name)
    return board, build_firmware(board, bundle, out, progress=progress, render_only=render_only, **kw)


@main.command("build")
@click.option("--board", "board_name", required=True, help="Board name (see 'fltiny boards').")
@_bundle_option
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Project directory (default build/fw/<board>).")
@click.option("--render-only", is_flag=True, help="Render and validate the project, do not build.")
@click.option("--key", "key_hex", default=None, help="Device HMAC key, 64 hex digits (default: the "
              "public development key).")
@click.option("--device-id", type=click.IntRange(1, 0xFFFF_FFFF), default=1, show_default=True,
              help="Device id when the board has no data blob.")
@click.option("--wifi-ssid", default="", help="ESP boards: Wi-Fi network (empty: UART0 only).")
@click.option("--wifi-password", default="")
@click.option("--wifi-port", type=click.IntRange(1, 65535), default=7878, show_default=True,
              help="ESP boards with --wifi-ssid: the TCP port the device listens on; the host "
              "connects to tcp://<device address>:PORT (the address is on the board's console).")
@click.option("--sensor", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A .c/.cpp file defining flt_port_read_sample: the board collects its own "
              "windows from it (no data blob compiled in; docs/boards.md \"Sensor hook\").")
@click.option("--window-stride", type=int, default=None,
              help="Time steps between the windows the device cuts (default: the window length).")
@click.option("--transport", type=click.Choice(["default", "mqtt"]), default="default",
              show_default=True, help="ESP boards: mqtt joins the broker of --mqtt-url with "
              "esp-mqtt over TLS (needs --wifi-ssid); default: UART0, or TCP with --wifi-ssid.")
@click.option("--mqtt-url", default="", help="--transport mqtt: the broker, mqtts://HOST:PORT.")
@click.option("--broker-dir", type=click.Path(path_type=Path), default=Path("build/broker"),
              show_default=True, help="--transport mqtt: the fleet directory whose CA and "
              "device certificate are embedded ('fltiny broker start --dir' makes it).")
@click.option("--ram-budget", default=None, metavar="BYTES",
              help="RAM the firmware may take (e.g. 32k; default: the board's): the optional "
              "round state that does not fit is left out, the window store takes the rest "
              "(docs/boards.md \"RAM budget\").")
@click.option("--secagg", is_flag=True, help="Compile secure aggregation's device side in "
              "('fltiny run --secagg' does; boards with more than 64 kB of RAM).")
def build_cmd(board_name: str, bundle: Path, out: Path | None, render_only: bool, key_hex: str | None,
              device_id: int, wifi_ssid: str, wifi_password: str, wifi_port: int,
              sensor: Path | None, window_stride: int | None, transport: str, mqtt_url: str,
              broker_dir: Path, ram_budget: str | None, secagg: bool) -> None:
    """Render a PlatformIO project for a board and build it (offline for emulated boards)."""
    try:
        key = bytes.fromhex(key_hex) if key_hex else None
    except ValueError:
        raise UsageError("--key must be 64 hex digits") from None
    mqtt = None
    if transport == "mqtt":
        from fltiny.build.mqtt_config import mqtt_build

        mqtt = mqtt_build(broker_dir, device_id, mqtt_url)
    elif mqtt_url:
        raise UsageError("--mqtt-url needs --transport mqtt")
    from fltiny.build.project import parse_ram_budget

    budget = parse_ram_budget(ram_budget) if ram_budget is not None else None
    t0 = time.perf_counter()
    board, fw = _build(board_name, bundle, out, render_only, key=key, device_id=device_id,
                       wifi_ssid=wifi_ssid, wifi_password=wifi_password, wifi_port=wifi_port,
                       sensor=sensor, window_stride=window_stride, mqtt=mqtt,
                       ram_budget=budget, secagg=secagg)
    if fw.result is None:
        say(f"rendered {fw.project.path} for {board.name} (platformio.ini accepted by PlatformIO)")
        _say_store(board, fw.project.store, sensor)
        _say_energy(board, bundle, wifi=bool(wifi_ssid))
        return
    say(f"built {board.name} in {time.perf_counter() - t0:.1f} s: {fw.elf}")
    for line in fw.report.lines():
        say(f"  {line}")
    if fw.report.parts:
        say(f"  {fw.report.parts_line()}")
    feats = fw.project.features
    say(f"  round state: {feats.note() if feats else 'all of it'}; secure aggregation: "
        + ("built in" if fw.project.secagg else "not built in (--secagg)"))
    _say_store(board, fw.project.store, sensor)
    _say_energy(board, bundle, wifi=bool(wifi_ssid))


def _say_energy(board: Board, bundle: Path, wifi: bool) -> None:
    """The estimated energy of a round on this board (fltiny.report.energy), at the server's
    default local epochs."""
    from fltiny.report.energy import build_lines
    from fltiny.server.config import TrainParams

    for line in build_lines(board, bundle, epochs=TrainParams().epochs, wifi=wifi):
        say(f"  {line}")


def _say_store(board: Board, store: StoreLayout | None, sensor: Path | None) -> None:
    if store is None:
        return
    if store.capacity:
        say(f"  window store: {store.capacity} windows of {store.window_len} x {store.channels} "
            f"(stride {store.stride}), {store.ram_bytes} B of RAM")
    elif not board.emulated and sensor is None:
        say("  window store: none (the data blob is compiled in; --sensor FILE collects windows "
            "on the device)")
    else:
        say("  window store: none (no RAM for one on this board)")


@main.command("flash")
@click.option("--board", "board_name", required=True, help="Board name (see 'fltiny boards').")
@click.option("--port", default=None, help="Serial port (lists the candidates when omitted).")
@_bundle_option
@click.option("--out", type=click.Path(path_type=Path), default=None)
@click.option("--device-id", type=click.IntRange(1, 0xFFFF_FFFF), default=None,
              help="The board's protocol device id (default: the lowest one the record does "
                   "not hold).")
@click.option("--key", "key_hex", default=None,
              help="The board's HMAC key, 64 hex digits (default: 32 fresh random bytes).")
@click.option("--record", type=click.Path(path_type=Path), default=None,
              help="Provisioning record the board's id and key are added to (default "
                   "build/devices.toml; 'fltiny run --port' reads it).")
@click.option("--ram-budget", default=None, metavar="BYTES",
              help="As 'fltiny build --ram-budget' (e.g. 32k).")
def flash_cmd(board_name: str, port: str | None, bundle: Path, out: Path | None,
              device_id: int | None, key_hex: str | None, record: Path | None,
              ram_budget: str | None) -> None:
    """Build and upload the firmware to a real board (PlatformIO upload; esptool for ESP32),
    provisioned with its own device id and key, recorded for 'fltiny run --port'."""
    from fltiny.boards import get_board
    from fltiny.build.project import parse_ram_budget
    from fltiny.devices.flash import Provisioning, flash_board
    from fltiny.experiment import default_build_root
    from fltiny.provision import parse_key, record_path

    board = get_board(board_name)
    budget = parse_ram_budget(ram_budget) if ram_budget is not None else None
    key = parse_key(key_hex, "--key") if key_hex is not None else None
    prov = Provisioning.resolve(record or record_path(default_build_root()), device_id, key)
    say(flash_board(board, port, bundle, out, progress=progress, provision=prov,
                    ram_budget=budget))


@main.command("emulate")
@click.option("--board", "board_name", required=True, help="An emulated board (qemu-*, native).")
@click.option("-n", "count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of boards.")
@_bundle_option
@click.option("--dataset", default=None, help="Dataset of the local data (default: the model's).")
@click.option("--partition", "scheme", type=click.Choice(["natural", "grouped", "iid", "dirichlet"]),
              default="natural", show_default=True, help="How the fleet data is split per device.")
@click.option("--seed", type=click.IntRange(0, 0xFFFF_FFFF), default=0, show_default=True,
              help="Seed of the partition and of each device's window shuffle (as 'fltiny run "
                   "--seed').")
@click.option("--pty", "use_pty", is_flag=True,
              help="Give each board a pty as its serial line (prints /dev/pts/N per board) for "
                   "'fltiny run --port': the boards' data stays in this process's boards.")
@click.option("--fleet-file", "fleet_file", type=click.Path(path_type=Path), default=None,
              help="Also write a fleet file listing the boards (port, board, device id) for "
                   "'fltiny run --fleet-file'.")
@click.option("--seconds", type=float, default=None, help="Stop after this long (default: Ctrl-C).")
def emulate_cmd(board_name: str, count: int, bundle: Path, dataset: str | None, scheme: str,
                seed: int, use_pty: bool, fleet_file: Path | None, seconds: float | None) -> None:
    """Start N emulated boards, each with its own data partition, and print their endpoints."""
    from contextlib import ExitStack

    from fltiny.devices import fleet_blobs, start_fleet
    from fltiny.provision import PortDevice, write_fleet_file

    board, fw = _build(board_name, bundle, None)
    elf = fw.elf
    progress(f"data blobs: {scheme} partition of the fleet data, one per device")
    blobs = [b.encode() for b in fleet_blobs(bundle, count, dataset=dataset, scheme=scheme,
                                              seed=seed, max_windows=board.max_windows)]
    import signal

    def _terminate(_sig, _frame):  # SIGTERM stops the boards like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with ExitStack() as stack:
        fleet = stack.enter_context(start_fleet(board, elf, blobs))
        if use_pty:
            from fltiny.devices.pty import PtyBridge

            ports = [ln.path for ln in stack.enter_context(PtyBridge(fleet.devices)).lines]
        else:
            ports = [f"tcp://{d.endpoint}" for d in fleet.devices]
        if fleet_file is not None:
            write_fleet_file(fleet_file, [PortDevice(p, board.name, d.device_id)
                                          for p, d in zip(ports, fleet.devices, strict=True)],
                             f"{count} x {board.name} from 'fltiny emulate' (pid {os.getpid()})")
        for d, port in zip(fleet.devices, ports, strict=True):
            say(f"{board.name}[{d.index}] device {d.device_id} {port}")
        say("running; Ctrl-C stops all boards" if seconds is None else f"running for {seconds:g} s")
        sys.stdout.flush()
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            dead = [d for d in fleet.devices if not d.alive()]
            if dead:
                raise ToolchainError(f"{board.name}[{dead[0].index}] exited with code "
                                     f"{dead[0].proc.returncode}")
            time.sleep(0.2)
    say("stopped")


@main.command("codegen")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: BUNDLE/c).")
@click.option("--prefix", default="backbone", show_default=True, help="C symbol prefix.")
def codegen_cmd(bundle: Path, out: Path | None, prefix: str) -> None:
    """Generate ahead-of-time C for a bundle's int8 backbone (no interpreter)."""
    from fltiny.codegen import generate
    from fltiny.export.bundle import read_bundle

    manifest, _head, backbone = read_bundle(bundle)
    if backbone is None:
        raise UsageError(f"bundle {bundle} has no backbone (the whole model is the head)")
    result = generate(backbone, out or bundle / "c", prefix=prefix)
    say(f"generated {result.header} and {result.source} for {manifest.model}")
    say(f"  {len(result.ops)} kernel calls, arena {result.arena_bytes} bytes, "
        f"constants {result.const_bytes} bytes, input {result.input_size} -> "
        f"output {result.output_size} int8")
    for line in result.ops:
        say(f"    {line}")


# ---- operating a run: audit chain and controls (the run store is the control plane) -------

_RUN_OPTION = click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True,
                           help="The run's directory (the --out of 'fltiny run' or 'fltiny "
                                "simulate', holding run.sqlite).")


@main.command("audit")
@_RUN_OPTION
def audit_cmd(run_dir: Path) -> None:
    """Verify a run's audit chain (one hash-linked record per round) and name the first
    broken link."""
    from fltiny.errors import AuditError
    from fltiny.server.store import RunStore

    store = RunStore.open_readonly(run_dir)
    try:
        result = store.verify()
    finally:
        store.close()
    if not result.ok:
        raise AuditError(result.line() + "; the store no longer matches what the run recorded")
    say(result.line())
    if result.pending_controls:
        say(f"  {result.pending_controls} control(s) queued, not applied yet")


@main.command("ctl")
@_RUN_OPTION
@click.argument("action", type=click.Choice(["rollback", "quarantine", "clear", "disable",
                                             "enable"]))
@click.argument("target", type=click.IntRange(min=0))
def ctl_cmd(run_dir: Path, action: str, target: int) -> None:
    """Queue a control for a run: rollback ROUND, quarantine / clear / disable / enable DEVICE.
    A running aggregator applies it at its next round and records it in the audit chain."""
    from fltiny.server.controls import DEVICE_ACTIONS
    from fltiny.server.store import RunStore

    store = RunStore.open_readonly(run_dir)
    try:
        if action == "rollback":
            store.checkpoint_of_round(target)  # UsageError naming the rounds there are
        elif action in DEVICE_ACTIONS:
            seen = sorted({r["device_id"] for r in store.updates()})
            if seen and target not in seen:
                raise UsageError(f"device {target} has not taken part in this run (devices "
                                 f"{', '.join(map(str, seen))}): check the id on the dashboard "
                                 "or in metrics.csv")
    finally:
        store.close()
    store = RunStore(Path(store.path))
    try:
        c = store.add_control(action, target)
    finally:
        store.close()
    say(f"queued control {c.describe()}: a running aggregator applies it at its next round "
        "(a finished run: when resumed, 'fltiny run --resume')")


# ---- the fleet's MQTT broker -----------------------------------------------------------------

@main.group("broker")
def broker_group() -> None:
    """The fleet's MQTT broker: mosquitto with TLS 1.2+, one certificate per device, ACLs."""


_broker_dir = click.option("--dir", "fleet_dir", type=click.Path(path_type=Path),
                           default=Path("build/broker"), show_default=True,
                           help="Fleet directory: certificates (pki/), mosquitto.conf, acl, "
                                "log, persistence. Never commit it: it holds private keys.")


@broker_group.command("start")
@_broker_dir
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8883, show_default=True,
              help="TLS port (0: any free port).")
@click.option("--devices", "count", type=click.IntRange(min=0), default=0, show_default=True,
              help="Issue client certificates for devices 1..N now (more are issued on demand).")
def broker_start_cmd(fleet_dir: Path, host: str, port: int, count: int) -> None:
    """Start mosquitto for a fleet in the background (stop it with 'fltiny broker stop')."""
    from fltiny.broker.mosquitto import Broker, running_broker
    from fltiny.broker.pki import ensure_pki

    running = running_broker(fleet_dir)
    if running is not None:
        raise UsageError(f"a broker for {fleet_dir} is already running on {running.url} (pid "
                         f"{running.pid}); 'fltiny broker stop --dir {fleet_dir}' stops it")
    broker = Broker(fleet_dir, host, port).start(detach=True)
    pki = ensure_pki(fleet_dir, range(1, count + 1))
    say(f"mosquitto running on {broker.url} (pid {broker.pid}), log {broker.log_file}")
    say(f"CA {pki.ca}; host certificate {pki.host.cert}; device certificates "
        f"{pki.root}/device-N.crt")
    say(f"use it: fltiny run --transport mqtt --broker-dir {fleet_dir} ...")


@broker_group.command("stop")
@_broker_dir
def broker_stop_cmd(fleet_dir: Path) -> None:
    """Stop the broker 'fltiny broker start' left running for a fleet directory."""
    from fltiny.broker.mosquitto import running_broker

    running = running_broker(fleet_dir)
    if running is None:
        raise UsageError(f"no broker is running for {fleet_dir} (nothing to stop); "
                         "'fltiny broker start --dir DIR' starts one")
    running.stop()
    say(f"stopped mosquitto (pid {running.pid}) of {fleet_dir}")


@broker_group.command("status")
@_broker_dir
def broker_status_cmd(fleet_dir: Path) -> None:
    """Whether a broker runs for a fleet directory, and where."""
    from fltiny.broker.mosquitto import running_broker

    running = running_broker(fleet_dir)
    say(f"running on {running.url} (pid {running.pid})" if running else
        f"not running ({fleet_dir})")


# ---- federated rounds: run and simulate share their options (fltiny/experiment.py) ---------

def _click_option(f, k: Knob):
    """One click option from a settings field: its flag, default, help and range."""
    ann, default = str(f.type), f.default
    if ann == "bool":
        if "/" in k.flag:
            return click.option(k.flag, f.name, default=default, show_default=True, help=k.help)
        return click.option(k.flag, f.name, is_flag=True, default=default, help=k.help)
    kind: click.ParamType
    if k.choices:
        kind = click.Choice(k.choices)
    elif "Path" in ann:
        kind = click.Path(path_type=Path)
    elif ann.startswith("int"):
        kind = click.IntRange(None if k.low is None else int(k.low),
                              None if k.high is None else int(k.high),
                              min_open=k.low_open, max_open=k.high_open)
    elif ann.startswith("float"):
        kind = click.FloatRange(k.low, k.high, min_open=k.low_open, max_open=k.high_open)
    else:
        kind = click.STRING
    return click.option(k.flag, f.name, type=kind, default=default,
                        show_default=default is not None, help=k.help)


def settings_options(cls: type, base: type | None = None):
    """Options for every knob of ``cls`` (nested settings included); with ``base``, only those
    ``cls`` adds to it. ``run`` and ``simulate`` share ``settings_options(ExperimentSettings)``."""
    skip = {f.name for f, _k in knob_fields(base)} if base is not None else set()
    items = [(f, k) for f, k in knob_fields(cls) if f.name not in skip]
    names = [f.name for f, _k in items]
    if len(names) != len(set(names)):
        raise RuntimeError(f"{cls.__name__}: two settings fields share a name: {names}")

    def decorate(fn):
        for f, k in reversed(items):
            fn = _click_option(f, k)(fn)
        return fn

    return decorate


experiment_options = settings_options(ExperimentSettings)


class _LiveTable:
    """Prints each round as it finishes, through the one round-metrics formatter."""

    def __init__(self) -> None:
        from fltiny.report.table import RoundTable

        self.table = RoundTable()

    def __call__(self, metrics) -> None:
        for line in self.table.line(metrics):
            say(line)
        sys.stdout.flush()


def _summary_lines(result: ExperimentResult) -> list[str]:
    lines = [f"held-out {k}: initial {result.initial[k]:.4f}, final {v:.4f}"
             for k, v in result.final.items()]
    s = result.summary
    rounds = [r for r in result.rounds if r["round"] > 0]
    if "wire" in s:
        from fltiny.report.wire import WireFigures

        w = s["wire"]
        lines.append(WireFigures(w["trained_params"], w["up_bytes_per_device_round"],
                                 w["down_bytes_per_device_round"], w["first_round_up_bytes"],
                                 w["first_round_down_bytes"], w["steady_rounds"]).line())
    if s.get("energy"):
        from fltiny.report.energy import run_lines

        lines += run_lines(s["energy"])
    lines.append(f"{len(rounds)} rounds in {result.seconds:.1f} s; run store {result.store}")
    if s.get("self_check_reverts"):
        lines.append(f"{s['self_check_reverts']} device-rounds failed their self-check of the "
                     f"global model and reverted to the factory model ({s['self_check_replayed']}"
                     f" recomputed by the host with the same verdict, "
                     f"{s['self_check_mismatches']} mismatched)")
    if "replayed" in s:
        if s["replayed"]:
            ok = ("all byte-identical" if s["replay_mismatches"] == 0
                  else f"{s['replay_mismatches']} MISMATCHED (rejected)")
            lines.append(f"{s['replayed']} device-rounds replayed, {ok}")
        lines.append(verification_line(s))
        lines.append(f"uplink per device-round: payload {s['payload_bytes_per_device_round']:.0f} B "
                     f"({s['payload_reduction_vs_dense']:.1f}x below the dense float32 head delta of "
                     f"{s['dense_float32_delta_bytes']} B); DELTA frames on the wire "
                     f"{s['delta_wire_bytes_per_device_round']:.0f} B "
                     f"({s['delta_wire_reduction_vs_dense']:.1f}x); all uplink bytes incl. HELLO "
                     f"and ACKs {s['wire_up_bytes_per_device_round']:.0f} B "
                     f"({s['wire_up_reduction_vs_dense']:.1f}x)")
    lines.append("report: " + ", ".join(str(p) for p in result.files))
    return lines


def verification_line(s: dict) -> str:
    """How the run's DELTAs were verified: replayed, or checked without the device's data."""
    line = (f"{s.get('replay_verified', 0)} updates replay-verified, "
            f"{s.get('not_replay_verified', 0)} not replay-verified")
    meta = s.get("replay_metadata_verified", 0)
    if meta:
        line += (f", {meta} replayed up to their local-DP noise (examples, loss and personal "
                 "metric identical; the noised payload cannot replay)")
    blind = s.get("devices_without_host_data", 0)
    if blind:
        line += (f" (the host holds no data of {blind} device(s): authentication, sequence, "
                 "format, example count, ranges, norm and anomaly checked)")
    return line


@main.command("dashboard")
@_RUN_OPTION
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: a free one).")
def dashboard_cmd(run_dir: Path, host: str, port: int) -> None:
    """Serve a local web page over a run store: per-round accuracy, participation, rejected
    updates, bytes, anomaly scores, devices and controls; live while the run goes on."""
    from fltiny.server.store import RunStore

    RunStore.open_readonly(run_dir).close()  # a directory without a store: one line, now
    from fltiny.dashboard.serve import DashboardServer

    server = DashboardServer(run_dir, host, port)
    say(f"dashboard of {run_dir}: {server.url} (Ctrl-C stops)")
    sys.stdout.flush()
    _stop_on_sigterm()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    say("dashboard stopped")


def _stop_on_sigterm() -> None:
    import signal

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)


def _dashboard_options(f):
    f = click.option("--dashboard-port", type=click.IntRange(0, 65535), default=8765,
                     show_default=True, help="Port of --dashboard (0: a free one).")(f)
    return click.option("--dashboard", "dashboard", is_flag=True,
                        help="Serve the live dashboard of this run on 127.0.0.1 while it runs, "
                             "and after it until Ctrl-C ('fltiny dashboard --run OUT' later).")(f)


class _Dashboard:
    """``--dashboard`` of run / simulate: serve on a thread during the run, then until Ctrl-C."""

    def __init__(self, enabled: bool, port: int, run_dir: Path) -> None:
        self.server = None
        if enabled:
            from fltiny.dashboard.serve import DashboardServer

            self.server = DashboardServer(run_dir, "127.0.0.1", port).start()
            progress(f"dashboard: {self.server.url}")

    def linger(self) -> None:
        if self.server is None:
            return
        say(f"dashboard still serving {self.server.url}: Ctrl-C stops")
        sys.stdout.flush()
        _stop_on_sigterm()
        try:
            while self.server.thread is not None and self.server.thread.is_alive():
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        self.server.stop()


@main.command("simulate")
@experiment_options
@settings_options(SimConfig, base=ExperimentSettings)
@_dashboard_options
def simulate_cmd(dashboard: bool, dashboard_port: int, **values) -> None:
    """Simulate a fleet on the firmware's own C runtime (bit-exact with the boards)."""
    from fltiny.sim.run import simulate

    cfg: SimConfig = from_knobs(SimConfig, values)
    board = _Dashboard(dashboard, dashboard_port, Path(cfg.out))
    result = simulate(cfg, progress=_LiveTable(), log=progress)
    for line in _summary_lines(result):
        say(line)
    board.linger()


@main.command("run")
@click.option("--board", "board_name", default=None,
              help="Board of every device: emulated boards to start (default qemu-m4f), or "
                   "the board on every --port (default: as its HELLO says).")
@click.option("--devices", "count", type=click.IntRange(min=1), default=None,
              help="Number of emulated boards to start (with --board; default 4).")
@click.option("--fleet", "fleet_spec", default=None,
              help="Mixed fleet, e.g. qemu-m4f=3,qemu-rv32=3,native=2 (overrides --board/--devices).")
@click.option("--port", "ports", multiple=True,
              help="Serial port of a running board (flashed, or 'fltiny emulate --pty'); "
                   "repeat for each board. The host holds none of their data: no replay.")
@click.option("--fleet-file", "fleet_file", type=click.Path(path_type=Path), default=None,
              help="A TOML file listing running boards (port, board, device id, key), e.g. "
                   "the provisioning record 'fltiny flash' writes (build/devices.toml).")
@click.option("--board-model", "board_models", multiple=True, metavar="BOARD=MODEL",
              help="Run MODEL on the fleet's BOARD boards (its own federation; repeat per "
                   "board); with --model auto, instead of the selection.")
@click.option("--family", "families", multiple=True, metavar="MODEL[=DIR]",
              help="--model auto: a candidate model family (repeat; default: every zoo model "
                   "of the dataset), tried largest first, with its export bundle DIR "
                   "(default build/<model>, exported when missing).")
@experiment_options
@settings_options(RunOptions, base=ExperimentSettings)
@_dashboard_options
def run_cmd(board_name: str | None, count: int | None, fleet_spec: str | None,
            ports: tuple[str, ...], fleet_file: Path | None, board_models: tuple[str, ...],
            families: tuple[str, ...], dashboard: bool, dashboard_port: int, **values) -> None:
    """Federated rounds with boards in the loop: emulated boards it starts (every DELTA
    replayed) or running boards on --port / --fleet-file (verified without replay). With
    --model auto each board type gets the largest model family that fits its RAM and flash,
    one federation per family in the run (report: OUT/families.json)."""
    from fltiny.run.runner import parse_fleet, run

    fam_extra = {"board_models": tuple(_pair(v, "--board-model", "BOARD=MODEL", True)
                                       for v in board_models),
                 "families": tuple(_pair(v, "--family", "MODEL[=DIR]", False)
                                   for v in families)}

    if ports or fleet_file is not None:
        given = "--port" if ports else "--fleet-file"
        if ports and fleet_file is not None:
            raise UsageError("give the running boards with --port or with --fleet-file, not both")
        if fleet_spec is not None or count is not None:
            other = "--fleet" if fleet_spec is not None else "--devices"
            raise UsageError(f"{given} drives boards that are already running, {other} starts "
                             "emulated ones: give one of them")
        opts: RunOptions = from_knobs(RunOptions, values, ports=ports, fleet_file=fleet_file,
                                      port_board=board_name, **fam_extra)
    else:
        fleet = (parse_fleet(fleet_spec) if fleet_spec
                 else [(board_name or "qemu-m4f", count or 4)])
        opts = from_knobs(RunOptions, values, fleet=tuple(fleet), **fam_extra)
    if opts.per_board_models:
        if dashboard:
            raise UsageError("--dashboard shows one run store; with a model per board open one "
                             "per family: fltiny dashboard --run OUT/<model>")
        _run_families(opts)
        return
    board = _Dashboard(dashboard, dashboard_port, Path(opts.out))
    result = run(opts, progress=_LiveTable(), say=progress, log=lambda s: log.info(s))
    for line in _summary_lines(result):
        say(line)
    board.linger()


def _pair(value: str, flag: str, form: str, need_value: bool) -> tuple[str, Any]:
    """'A=B' -> (A, B); without '=', (A, None) unless a value is needed (one-line error)."""
    key, eq, val = value.partition("=")
    if not key.strip() or (eq and not val.strip()) or (need_value and not eq):
        raise UsageError(f"{flag} '{value}': expected {form}")
    v = val.strip() if eq else None
    return key.strip(), (Path(v) if v is not None and flag == "--family" else v)


def _run_families(opts: RunOptions) -> None:
    """``fltiny run --model auto``: the selection, one live table per family (each line
    prefixed with its model), then the families side by side."""
    import threading

    from fltiny.report.table import RoundTable
    from fltiny.run.families import family_table, run_families

    tables: dict[str, RoundTable] = {}
    lock = threading.Lock()

    def live(family: str, metrics) -> None:
        with lock:
            for line in tables.setdefault(family, RoundTable()).line(metrics):
                say(f"[{family}] {line}")
            sys.stdout.flush()

    fr = run_families(opts, progress=live, say=progress, log=lambda s: log.info(s))
    for model, result in fr.results.items():
        for line in _summary_lines(result):
            say(f"[{model}] {line}")
    say("families side by side:")
    for line in family_table(fr.summary):
        say("  " + line)
    say(f"{len(fr.results)} families in {fr.seconds:.1f} s; report: "
        + ", ".join(str(p) for p in fr.files))


if __name__ == "__main__":
    main()
