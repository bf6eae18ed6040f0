"""Render a PlatformIO project for one board from an export bundle (templates/project/).

The rendered directory is self-contained: the runtime components, the device loop
(firmware/app), the board's port (firmware/ports/<port>) and the generated backbone are COPIED
into src/, so `pio run` in it works without fltiny and the project can be zipped and moved.
Files are written only when their content changes, which keeps PlatformIO's incremental build
(and the test suite's build cache) effective.

Layout::

    platformio.ini          platform, board, framework, flags, linker script
    <board>.ld              (QEMU boards) memory regions = the board's flash/RAM budget
    include/                fltiny_config.h, fltiny_model.h, head_init.h (from the bundle)
    src/runtime/            core/ kernels/ train/ delta/ proto/ (firmware/runtime)
    src/app/                the device loop and the portable round (firmware/app)
    src/port/               port.h, common/, and the port's sources
    src/generated/          backbone.c/.h from fltiny.codegen
    CMakeLists.txt, src/CMakeLists.txt, sdkconfig.defaults, partitions.csv   (ESP-IDF only)
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fltiny import __version__
from fltiny.boards import REPO_ROOT, Board
from fltiny.errors import UsageError
from fltiny.outdir import prepare_out_dir
from fltiny.templating import render

if TYPE_CHECKING:
    from .mqtt_config import MqttBuild

FIRMWARE = REPO_ROOT / "firmware"
RUNTIME_COMPONENTS = ("core", "kernels", "train", "delta", "proto", "crypto", "privacy")
# secure aggregation's device side (app/flt_secagg_dev.h, over crypto/): compiled in where it fits
SECAGG_COMPONENTS = ("secagg",)
# boards with at most this much RAM leave secure aggregation out (FLT_APP_SECAGG 0): its
# client, the kept delta and the reply buffer take ~15 kB, and har-tiny fills qemu-m3's 64 kB
SECAGG_MIN_RAM = 65536
FIRMWARE_VERSION = 1

# C warning flags for the project's own sources (build_src_flags: never the framework's).
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror", "-Wshadow", "-ffp-contract=off")
STRICT_C_FLAGS = ("-pedantic", "-Wconversion", "-Wcast-qual")

# Checkpoint capacity by storage medium (bytes): 0 = no persistent storage, the device loop then
# keeps no checkpoint buffer (a reset restarts from the factory head; the host resyncs it).
CKPT_CAPACITY = {"none": 0, "nvs": 65536, "file": 1 << 20}

# Arduino cores' serial buffers: STM32duino's HardwareSerial keeps 64 bytes by default, less than
# a quarter of one protocol chunk (FLT_PROTO_MAX_CHUNK 256 + framing); bytes that arrive while the
# device is busy (verifying a frame, applying a GLOBAL) would be dropped before our ring sees them.
ARDUINO_CORE_DEFINES = {"ststm32": ("SERIAL_RX_BUFFER_SIZE=1024", "SERIAL_TX_BUFFER_SIZE=256")}

# The TCP port an ESP board listens on in Wi-Fi mode (fltiny build --wifi-port).
DEFAULT_WIFI_PORT = 7878

# A development key: every build without --key uses it. Real fleets provision their own.
DEV_KEY = hashlib.sha256(b"fltiny development key: not secret").digest()


@dataclass
class Project:
    board: Board
    path: Path
    env_name: str
    model_hash: bytes
    key: bytes
    device_id: int
    arena_bytes: int = 0
    selftest: bool = False
    files: list[Path] = field(default_factory=list)
    store: StoreLayout | None = None
    features: RoundFeatures | None = None
    secagg: bool = False
    n_params: int = 0

    @property
    def elf(self) -> Path:
        return self.path / ".pio" / "build" / self.env_name / "firmware.elf"


def _write(path: Path, data: bytes | str, written: list[Path]) -> None:
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_bytes() != raw:
        path.write_bytes(raw)
    written.append(path)


# Target-optimised kernel folders (firmware/runtime/kernels/<target>/) and the cores they serve.
KERNEL_TARGETS = ("armv7em", "rv32")
_ARMV7EM_ARCHS = ("cortex-m4", "cortex-m4f", "cortex-m7")
_RV32_ARCHS = ("rv32imc",)


def kernel_variant(board: Board) -> str | None:
    """The kernels/<target>/ folder whose files replace the reference kernels on `board`."""
    if board.arch in _ARMV7EM_ARCHS:
        return "armv7em"
    if board.arch in _RV32_ARCHS:
        return "rv32"
    return None


def _copy_tree(src: Path, dst: Path, written: list[Path], suffixes=(".c", ".h", ".cpp", ".S"),
               skip: tuple[str, ...] = ()) -> None:
    for f in sorted(src.rglob("*")):
        rel = f.relative_to(src)
        if skip and rel.parts[0] in skip:
            continue
        if f.is_file() and f.suffix in suffixes:
            _write(dst / rel, f.read_bytes(), written)


def _c_string(text: str) -> str:
    """text as the inside of a C string literal (Wi-Fi credentials are the user's)."""
    if any(ord(c) < 0x20 or ord(c) > 0x7e for c in text):
        raise UsageError("Wi-Fi SSID and password must be printable ASCII")
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _c_bytes(raw: bytes) -> str:
    return ", ".join(f"0x{b:02x}" for b in raw)


def _embedded_data(bundle: Path, board: Board, device_id: int, max_windows: int,
                   sensor: bool = False) -> str:
    """include/fltiny_data.h: the data blob of fleet device `device_id`, compiled in (real
    boards have no QEMU loader), or none at all when the board collects its own windows
    through the sensor hook (`sensor`: the build brings a sample source)."""
    from fltiny.devices.data import fleet_blobs

    if sensor:
        return (f"/* fltiny_data.h - generated by fltiny {__version__} for board '{board.name}': "
                "no data blob,\n * the device collects its windows through the sensor hook "
                "(docs/boards.md \"Sensor hook\"); do not edit. */\n"
                "#ifndef FLTINY_DATA_H\n#define FLTINY_DATA_H\n\n#include <stdint.h>\n\n"
                "#define FLT_EMBEDDED_DATA_LEN 0u\n"
                "static const uint8_t flt_embedded_data[4] __attribute__((aligned(4))) = {0};\n\n"
                "#endif /* FLTINY_DATA_H */\n")
    blob = fleet_blobs(Path(bundle), device_id, max_windows=max_windows)[device_id - 1].encode()
    rows = [", ".join(f"0x{b:02x}" for b in blob[i:i + 24]) + "," for i in range(0, len(blob), 24)]
    return (f"/* fltiny_data.h - generated by fltiny {__version__}: the data blob of device "
            f"{device_id} for board '{board.name}'\n * ({len(blob)} bytes, docs/boards.md "
            "\"Data blob\"); do not edit. */\n"
            "#ifndef FLTINY_DATA_H\n#define FLTINY_DATA_H\n\n#include <stdint.h>\n\n"
            f"#define FLT_EMBEDDED_DATA_LEN {len(blob)}u\n"
            "static const uint8_t flt_embedded_data[FLT_EMBEDDED_DATA_LEN]\n"
            "    __attribute__((aligned(4))) = {\n    "
            + "\n    ".join(rows) + "\n};\n\n#endif /* FLTINY_DATA_H */\n")


def parse_ram_budget(text: str) -> int:
    """'32k', '32K', '32768', '1M' -> bytes (k = 1024); UsageError otherwise."""
    t = text.strip().lower().removesuffix("b")
    scale = {"k": 1024, "m": 1 << 20}.get(t[-1:], 1)
    digits = t[:-1] if scale != 1 else t
    if not digits.isdigit() or int(digits) <= 0:
        raise UsageError(f"--ram-budget {text!r}: give bytes, or kilobytes as '32k'")
    return int(digits) * scale


def budget_board(board: Board, ram_budget: int) -> Board:
    """`board` with `ram_budget` bytes of RAM (at most its own; the emulated boards' QEMU RAM is
    larger still): the linker script, the store's share and the stack follow it."""
    if ram_budget > board.ram_bytes:
        raise UsageError(f"--ram-budget {ram_budget} B is more than board '{board.name}' has "
                         f"({board.ram_bytes} B)")
    return dataclasses.replace(board, ram_bytes=int(ram_budget))


def secagg_ram_bytes(n_params: int) -> int:
    """Static RAM of secure aggregation's device side for P trained parameters
    (app/flt_secagg_dev.h): the client (3,048 B at 16 members), the kept delta and MASKED's
    index set / values (8 P) and the reply buffer (MASKED at 32-bit values: 4 P + 13)."""
    return 3048 + 8 * n_params + 4 * n_params + 13


def secagg_fits(board: Board, n_params: int | None = None) -> bool:
    """Whether the device firmware of ``board`` carries secure aggregation (FLT_APP_SECAGG 1):
    boards with more than 64 kB of RAM (``fltiny run --secagg`` refuses the others) where,
    for a head of ``n_params``, it takes at most an eighth of the RAM (har-tiny's 1,030: 15 kB;
    har-small's 6,406-parameter tail: 80 kB, more than qemu-rv32 can spare beside its 25 kB
    buffers per parameter set). Without it the board's HELLO lacks the capability and a
    ``--secagg`` run names it."""
    if board.ram_bytes <= SECAGG_MIN_RAM:
        return False
    return n_params is None or secagg_ram_bytes(n_params) <= board.ram_bytes // 8


def stack_bytes(board: Board, ram_budget: int | None = None) -> int:
    """The linker's stack reserve: 4 kB on boards with at most 64 kB of RAM, else 8 kB; under a
    RAM budget (``fltiny build --ram-budget``) the device loop's measured high-water mark plus a
    margin (BUDGET_STACK_BYTES)."""
    if ram_budget is not None:
        return BUDGET_STACK_BYTES
    return 4096 if board.ram_bytes <= 65536 else 8192


# The device loop's deepest stack use in a budget build (top-k's histogram at 4 bits), measured
# on qemu-m4f with har-tiny (the STATUS field stack=, firmware/app/flt_device.h) over rounds
# with a self-check, a GLOBAL delta, a local-DP round (its noise generator is the deepest path)
# and a STATUS: 1,860 B (tests/test_ram_budget.py keeps it within STACK_HWM_BYTES); a budget
# build reserves that plus STACK_MARGIN_BYTES (interrupt frames, 104 B each with the FPU's
# state, and paths the test does not take).
STACK_HWM_BYTES = 1860
STACK_MARGIN_BYTES = 1024
BUDGET_STACK_BYTES = (STACK_HWM_BYTES + STACK_MARGIN_BYTES + 7) // 8 * 8  # 2,888 B


@dataclass(frozen=True)
class RoundFeatures:
    """Round state the device firmware carries (FLT_APP_FEEDBACK, FLT_APP_DRIFT,
    FLT_APP_PERSONAL): all of it by default; a RAM budget keeps what fits, the last of
    DROP_ORDER first (fltiny.build.firmware.fitting_features, docs/boards.md "RAM budget")."""

    feedback: bool = True  # error feedback: the residual and its next value (8 P bytes)
    drift: bool = True  # FedDyn's drift state and its next value (8 P bytes)
    personal: bool = True  # personal serving: the served local model (4 P bytes)

    DROP_ORDER = ("drift", "personal", "feedback")
    NAMES = {"feedback": "error feedback", "drift": "FedDyn drift", "personal": "personal serving"}

    @staticmethod
    def ram_bytes(name: str, n_params: int) -> int:
        """Static RAM one feature takes for P trained parameters (firmware/app/flt_device.c)."""
        return (4 if name == "personal" else 8) * n_params

    def left_out(self) -> list[str]:
        return [n for n in self.DROP_ORDER if not getattr(self, n)]

    def note(self) -> str:
        out = self.left_out()
        return ("all of it" if not out else
                "left out to fit the RAM budget: " + ", ".join(self.NAMES[n] for n in out))


def feature_cache_fits(board: Board, max_windows: int, n_features: int) -> bool:
    """Whether the device keeps the int8 backbone features of its training windows in RAM
    (computed once per round) instead of running the backbone at every use: when they take at
    most an eighth of the board's RAM. Both give the same bits (flt_round.h)."""
    return max_windows * n_features <= board.ram_bytes // 8


# The window store takes at most this share of a board's RAM (the feature cache an eighth).
STORE_RAM_SHARE = 4


@dataclass(frozen=True)
class StoreLayout:
    """The device's own data at generation time (fltiny_config.h, docs/boards.md "Window
    store"): window geometry, the store's capacity and what one stored window costs."""

    window_len: int
    channels: int
    stride: int
    target_kind: int  # 0 labels, 1 targets
    n_targets: int
    capacity: int

    @property
    def window_bytes(self) -> int:
        return self.window_len * self.channels

    @property
    def record_bytes(self) -> int:
        """RAM of one stored window: its int8 values and its label or targets."""
        return self.window_bytes + 4 * self.n_targets

    @property
    def ram_bytes(self) -> int:
        """The store's buffers (windows, labels, the window being cut); 0 without a store."""
        return self.capacity * self.record_bytes + self.window_bytes if self.capacity else 0


def useful_store_windows(max_windows: int) -> int:
    """The most windows a round can use: the largest n whose training split (n minus its
    personal test split, the device's own rule) is at most max_windows."""
    from fltiny.devices.data import personal_n_test

    # n - n_test(n) never decreases with n, and exceeds max_windows at 2 * max_windows + 2
    n = 2 * max_windows + 2
    while n > 1 and n - personal_n_test(n) > max_windows:
        n -= 1
    return n


def store_layout(board: Board, manifest, max_windows: int, *, stride: int | None = None,
                 enabled: bool = True, store_ram: int | None = None) -> StoreLayout:
    """The window store of `board`: as many windows as a round can use (useful_store_windows),
    at most a STORE_RAM_SHARE-th of the board's RAM (or, under a RAM budget, the `store_ram`
    bytes the rest of the firmware leaves), at most the board's own `store_windows` (0: no
    store); 0 when not `enabled` (a real board with its data blob compiled in)."""
    from fltiny.devices.data import window_shape

    steps, channels = window_shape(manifest.input_shape)
    stride = steps if stride is None else int(stride)
    if not 1 <= stride <= steps:
        raise UsageError(f"the window stride must be 1..{steps} (the window length), got {stride}")
    regression = manifest.task != "classification"
    n_targets = int(manifest.n_outputs) if regression else 1
    layout = StoreLayout(steps, channels, stride, int(regression), n_targets, 0)
    if not enabled:
        return layout
    room = board.ram_bytes // STORE_RAM_SHARE if store_ram is None else int(store_ram)
    share = room - layout.window_bytes  # less the window being cut
    cap = min(useful_store_windows(max_windows), max(0, share) // layout.record_bytes)
    if board.store_windows is not None:
        cap = min(cap, board.store_windows)
    return dataclasses.replace(layout, capacity=max(0, cap))


def render_project(board: Board, bundle: Path, out: Path, *, device_id: int = 1,
                   key: bytes | None = None, selftest_header: str | None = None,
                   bench: bool = False, max_windows: int | None = None, wifi_ssid: str = "",
                   wifi_password: str = "", wifi_port: int = DEFAULT_WIFI_PORT,
                   sensor: Path | None = None, window_stride: int | None = None,
                   mqtt: MqttBuild | None = None, secagg: bool = False,
                   ram_budget: int | None = None, store_ram: int | None = None,
                   features: RoundFeatures | None = None) -> Project:
    """Write the PlatformIO project for `board` from the bundle at `bundle` into `out`.
    `sensor`: a C/C++ file defining flt_port_read_sample (port.h), the board's own sample
    source (a real board then has no data blob compiled in and sizes its window store);
    `window_stride`: steps between the windows the store cuts (default: the window length).
    `wifi_ssid` (ESP boards only): the device joins that network and listens for the host on TCP
    port `wifi_port` (the host connects to tcp://<device address>:<port>); empty: UART0.
    `mqtt` (ESP boards, with `wifi_ssid`): instead of listening, the device joins the broker
    with esp-mqtt over TLS (include/fltiny_mqtt.h: URL, CA, its certificate and key).
    `secagg`: compile secure aggregation's device side in (where it fits, secagg_fits; a
    ``fltiny run --secagg`` asks for it). `ram_budget`: the RAM the firmware may take instead
    of the board's (bytes; the linker script, the window store's share and the stack reserve
    follow it, docs/boards.md "RAM budget"); `store_ram`: the bytes the window store may take
    (store_layout; None: its share of the RAM). `features`: the round state compiled in
    (default all of it, RoundFeatures)."""
    from fltiny.codegen import generate
    from fltiny.export.bundle import read_bundle

    manifest, head, backbone = read_bundle(Path(bundle))
    if backbone is None:
        raise UsageError(f"bundle {bundle} has no backbone (the whole model is the head); the device "
                         "firmware needs an int8 backbone")
    key = DEV_KEY if key is None else key
    if wifi_ssid and not board.esp:
        raise UsageError(f"board '{board.name}' has no Wi-Fi transport (transports: "
                         f"{', '.join(board.transports)}); drop --wifi-ssid")
    if mqtt is not None and not (board.esp and wifi_ssid):
        raise UsageError(f"--transport mqtt: board '{board.name}' " + (
            "needs --wifi-ssid (the network the board joins)" if board.esp else
            "has no MQTT client in its firmware (ESP boards do; the native board takes its "
            "broker at run time: 'fltiny run --transport mqtt')"))
    if not 0 < wifi_port < 65536:
        raise UsageError(f"--wifi-port {wifi_port} is not a TCP port (1-65535)")
    if len(key) != 32:
        raise UsageError("the device key must be 32 bytes (64 hex digits)")
    if ram_budget is not None:
        board = budget_board(board, ram_budget)
    features = RoundFeatures() if features is None else features
    out = Path(out).resolve()
    prepare_out_dir(out)
    written: list[Path] = []
    src = out / "src"

    # runtime, app, port
    secagg = bool(secagg) and secagg_fits(board, head.n_params)
    for comp in RUNTIME_COMPONENTS + (SECAGG_COMPONENTS if secagg else ()):
        _copy_tree(FIRMWARE / "runtime" / comp, src / "runtime" / comp, written,
                   skip=KERNEL_TARGETS if comp == "kernels" else ())
    variant = kernel_variant(board)
    if variant is not None:
        # kernels/<target>/<op>.c replaces kernels/<op>.c (same names, same contract).
        for f in sorted((FIRMWARE / "runtime" / "kernels" / variant).glob("*.c")):
            _write(src / "runtime" / "kernels" / f.name, f.read_bytes(), written)
    _copy_tree(FIRMWARE / "app", src / "app", written)
    _write(src / "port" / "port.h", (FIRMWARE / "ports" / "port.h").read_bytes(), written)
    _copy_tree(FIRMWARE / "ports" / "common", src / "port" / "common", written)
    _copy_tree(FIRMWARE / "ports" / board.port, src / "port" / board.port, written)
    if sensor is not None:
        sensor = Path(sensor)
        if not sensor.is_file() or sensor.suffix not in (".c", ".cpp"):
            raise UsageError(f"--sensor {sensor}: not a .c or .cpp file (it defines "
                             "flt_port_read_sample, docs/boards.md \"Sensor hook\")")
        _write(src / "sensor" / sensor.name, sensor.read_bytes(), written)

    # generated backbone (codegen writes into a scratch dir; copy so unchanged files keep mtimes)
    gen_tmp = out / ".fltiny" / "codegen"
    if gen_tmp.exists():
        shutil.rmtree(gen_tmp)
    result = generate(backbone, gen_tmp, prefix="backbone")
    for f in sorted(gen_tmp.iterdir()):
        _write(src / "generated" / f.name, f.read_bytes(), written)
    backbone_header = Path(result.header).name

    # headers
    inc = out / "include"
    bundle_include = Path(bundle) / "include" / "head_init.h"
    _write(inc / "head_init.h", bundle_include.read_bytes(), written)
    model_hash = hashlib.sha256(backbone).digest()[:8]
    acts = sum(lyr.n_out for lyr in head.layers)
    maxw = max(lyr.n_out for lyr in head.layers)
    windows = max_windows or board.max_windows
    # the emulated boards choose blob or recording at run time (their data region): both ways
    # compiled in; a real board has its blob compiled in unless the build brings a sensor
    store = store_layout(board, manifest, windows, stride=window_stride,
                         enabled=board.emulated or sensor is not None, store_ram=store_ram)
    if store.window_bytes != int(manifest.backbone["input"]["nbytes"]):
        raise UsageError(f"model input {manifest.input_shape} is not the backbone's "
                         f"{manifest.backbone['input']['nbytes']} input bytes")
    ctx = dict(
        fltiny_version=__version__, board=board, manifest=manifest,
        stack_bytes=stack_bytes(board, ram_budget), features=features,
        features_note=features.note(),
        data_address=int(board.emulator.get("data_address", 0)),
        data_max_bytes=int(board.emulator.get("data_max_bytes", 0)),
        firmware_version=FIRMWARE_VERSION, device_id=device_id,
        key_bytes=_c_bytes(key), model_hash_bytes=_c_bytes(model_hash),
        key_note=("the fltiny DEVELOPMENT key (public; pass --key for a real fleet)"
                  if key == DEV_KEY else "provisioned with --key"),
        max_windows=windows,
        window_len=store.window_len, sample_channels=store.channels, window_stride=store.stride,
        store_windows=store.capacity, target_kind=store.target_kind, n_targets=store.n_targets,
        store_note=(f"{store.ram_bytes} B of RAM" if store.capacity else
                    "no store: " + ("this board's RAM has no room for one" if board.emulated or sensor
                                    else "the data blob is compiled in; --sensor builds one")),
        sensor=sensor is not None, secagg=int(secagg),
        loss_macro="FLT_LOSS_SOFTMAX_CE" if manifest.task == "classification" else "FLT_LOSS_MSE",
        head_acts=acts, head_maxw=maxw,
        feature_cache=int(feature_cache_fits(board, windows, head.layers[0].n_in)),
        wifi_ssid=_c_string(wifi_ssid), wifi_password=_c_string(wifi_password),
        wifi_port=wifi_port, mqtt=mqtt is not None,
        backbone_header=backbone_header, prefix="backbone", PREFIX="BACKBONE",
    )
    _write(inc / "fltiny_config.h", render("project/include/fltiny_config.h.j2", **ctx), written)
    _write(inc / "fltiny_model.h", render("project/include/fltiny_model.h.j2", **ctx), written)
    if selftest_header is not None:
        _write(src / "app" / "flt_selftest_data.h", selftest_header, written)
    if mqtt is not None:
        from .mqtt_config import mqtt_header

        _write(inc / "fltiny_mqtt.h", mqtt_header(mqtt), written)
    if not board.emulated:
        _write(inc / "fltiny_data.h", _embedded_data(bundle, board, device_id, windows,
                                                     sensor is not None), written)

    # linker script
    ldscript = board.pio_ldscript  # a framework's script, by name (real boards)
    if board.port in ("qemu-mps2", "qemu-rv32"):
        tpl = "mps2.ld.j2" if board.port == "qemu-mps2" else "rv32.ld.j2"
        ldscript = f"{board.name}.ld"
        _write(out / ldscript, render(f"project/ld/{tpl}", flash_origin=board.memory["flash_origin"],
                                      ram_origin=board.memory["ram_origin"], **ctx), written)

    # platformio.ini
    defines = [f"FLT_PORT_CKPT_MAX={CKPT_CAPACITY[board.storage]}u",
               *ARDUINO_CORE_DEFINES.get(board.pio_platform if board.port == "arduino" else "", ())]
    if board.qemu:  # linker symbols _ebss/_estack: the device reports its stack use (STATUS)
        defines.append("FLT_APP_STACK_WATCH=1")
    if ram_budget is not None:  # top-k's histogram on the stack: 64 B instead of 1 kB (delta.h)
        defines.append("FLT_DELTA_RADIX_BITS=4")
    src_filter = ""
    if selftest_header is not None:
        defines.append("FLT_APP_SELFTEST=1")

    if bench:  # the benchmark firmware (flt_benchmain.c) replaces the device loop
        if selftest_header is not None:
            raise UsageError("a firmware is either the self-test or the benchmark, not both")
        defines.append("FLT_APP_BENCH=1")
        src_filter = "+<*> -<app/flt_device.c>"
    warnings = list(WARNING_FLAGS)
    if board.emulated:
        warnings += STRICT_C_FLAGS
    env_name = board.name.replace("-", "_")
    _write(out / "platformio.ini", render(
        "project/platformio.ini.j2", env_name=env_name, platform_dir=board.local_platform_dir,
        ldscript=ldscript, defines=defines, warning_flags=warnings, src_filter=src_filter,
        **ctx), written)

    if board.esp:
        from .espidf import IDF_REQUIRES, sdkconfig_defaults

        requires = IDF_REQUIRES + (("mqtt", "esp-tls") if mqtt is not None else ())
        esp_ctx = dict(ctx, idf_requires=requires, warning_flags=WARNING_FLAGS,
                       sdkconfig=sdkconfig_defaults(board, uart_link=not wifi_ssid))
        for name in ("CMakeLists.txt", "src/CMakeLists.txt", "sdkconfig.defaults", "partitions.csv"):
            _write(out / name, render(f"project/esp-idf/{name.replace('/', '_')}.j2", **esp_ctx),
                   written)

    keep = set(written)
    for folder in (src, inc):
        for f in folder.rglob("*"):
            if f.is_file() and f not in keep:
                f.unlink()  # a leftover of another board, port or self-test build
    return Project(board=board, path=out, env_name=env_name, model_hash=model_hash, key=key,
                   device_id=device_id, arena_bytes=result.arena_bytes,
                   selftest=selftest_header is not None, files=written, store=store,
                   features=features, secagg=secagg, n_params=head.n_params)
