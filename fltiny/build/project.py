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
    src/runtime/            flt_status + kernels/ train/ delta/ proto/ (firmware/runtime)
    src/app/                the device loop and the portable round (firmware/app)
    src/port/               port.h, common/, and the port's sources
    src/generated/          backbone.c/.h from fltiny.codegen
    CMakeLists.txt, src/CMakeLists.txt, sdkconfig.defaults, partitions.csv   (ESP-IDF only)
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fltiny import __version__
from fltiny.boards import REPO_ROOT, Board
from fltiny.errors import UsageError
from fltiny.templating import render

FIRMWARE = REPO_ROOT / "firmware"
RUNTIME_COMPONENTS = ("kernels", "train", "delta", "proto")
FIRMWARE_VERSION = 1

# C warning flags for the project's own sources (build_src_flags: never the framework's).
# -Wno-type-limits: arm-none-eabi uses short enums, so flt_status.c's `(int)status < 0` guard is
# always false there and -Wextra would turn that defensive check into an error.
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wno-type-limits", "-ffp-contract=off")
STRICT_C_FLAGS = ("-pedantic", "-Wconversion", "-Wcast-qual")

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

    @property
    def elf(self) -> Path:
        return self.path / ".pio" / "build" / self.env_name / "firmware.elf"


def _write(path: Path, data: bytes | str, written: list[Path]) -> None:
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_bytes() != raw:
        path.write_bytes(raw)
    written.append(path)


def _copy_tree(src: Path, dst: Path, written: list[Path], suffixes=(".c", ".h", ".cpp", ".S")) -> None:
    for f in sorted(src.rglob("*")):
        if f.is_file() and f.suffix in suffixes:
            _write(dst / f.relative_to(src), f.read_bytes(), written)


def _c_bytes(raw: bytes) -> str:
    return ", ".join(f"0x{b:02x}" for b in raw)


def stack_bytes(board: Board) -> int:
    return 4096 if board.ram_bytes <= 65536 else 8192


def render_project(board: Board, bundle: Path, out: Path, *, device_id: int = 1,
                   key: bytes | None = None, selftest_header: str | None = None,
                   max_windows: int | None = None, wifi_ssid: str = "", wifi_password: str = "",
                   server: str = "") -> Project:
    """Write the PlatformIO project for `board` from the bundle at `bundle` into `out`."""
    from fltiny.codegen import generate
    from fltiny.export.bundle import read_bundle

    manifest, head, backbone = read_bundle(Path(bundle))
    if backbone is None:
        raise UsageError(f"bundle {bundle} has no backbone (the whole model is the head); the device "
                         "firmware needs an int8 backbone")
    key = DEV_KEY if key is None else key
    if len(key) != 32:
        raise UsageError("the device key must be 32 bytes (64 hex digits)")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    src = out / "src"

    # runtime, app, port
    for f in sorted((FIRMWARE / "runtime").glob("*.[ch]")):
        _write(src / "runtime" / f.name, f.read_bytes(), written)
    for comp in RUNTIME_COMPONENTS:
        _copy_tree(FIRMWARE / "runtime" / comp, src / "runtime" / comp, written)
    _copy_tree(FIRMWARE / "app", src / "app", written)
    _write(src / "port" / "port.h", (FIRMWARE / "ports" / "port.h").read_bytes(), written)
    _copy_tree(FIRMWARE / "ports" / "common", src / "port" / "common", written)
    _copy_tree(FIRMWARE / "ports" / board.port, src / "port" / board.port, written)

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
    host, _, port = server.partition(":")
    ctx = dict(
        fltiny_version=__version__, board=board, manifest=manifest,
        stack_bytes=stack_bytes(board),
        data_address=int(board.emulator.get("data_address", 0)),
        data_max_bytes=int(board.emulator.get("data_max_bytes", 0)),
        firmware_version=FIRMWARE_VERSION, device_id=device_id,
        key_bytes=_c_bytes(key), model_hash_bytes=_c_bytes(model_hash),
        key_note=("the fltiny DEVELOPMENT key (public; pass --key for a real fleet)"
                  if key == DEV_KEY else "provisioned with --key"),
        max_windows=max_windows or board.max_windows,
        loss_macro="FLT_LOSS_SOFTMAX_CE" if manifest.task == "classification" else "FLT_LOSS_MSE",
        head_acts=acts, head_maxw=maxw,
        wifi_ssid=wifi_ssid, wifi_password=wifi_password, server_host=host,
        server_port=int(port) if port else 0,
        backbone_header=backbone_header, prefix="backbone", PREFIX="BACKBONE",
    )
    _write(inc / "fltiny_config.h", render("project/include/fltiny_config.h.j2", **ctx), written)
    _write(inc / "fltiny_model.h", render("project/include/fltiny_model.h.j2", **ctx), written)
    if selftest_header is not None:
        _write(src / "app" / "flt_selftest_data.h", selftest_header, written)

    # linker script
    ldscript = ""
    if board.port in ("qemu-mps2", "qemu-rv32"):
        tpl = "mps2.ld.j2" if board.port == "qemu-mps2" else "rv32.ld.j2"
        ldscript = f"{board.name}.ld"
        _write(out / ldscript, render(f"project/ld/{tpl}", flash_origin=board.memory["flash_origin"],
                                      ram_origin=board.memory["ram_origin"], **ctx), written)

    # platformio.ini
    defines = []
    if selftest_header is not None:
        defines.append("FLT_APP_SELFTEST=1")
    warnings = list(WARNING_FLAGS)
    if board.emulated:
        warnings += STRICT_C_FLAGS
    env_name = board.name.replace("-", "_")
    _write(out / "platformio.ini", render(
        "project/platformio.ini.j2", env_name=env_name, platform_dir=board.local_platform_dir,
        ldscript=ldscript, defines=defines, warning_flags=warnings, src_filter="",
        **ctx), written)

    if board.esp:
        for name in ("CMakeLists.txt", "src/CMakeLists.txt", "sdkconfig.defaults", "partitions.csv"):
            _write(out / name, render(f"project/esp-idf/{name.replace('/', '_')}.j2", **ctx), written)

    keep = set(written)
    for folder in (src, inc):
        for f in folder.rglob("*"):
            if f.is_file() and f not in keep:
                f.unlink()  # a leftover of another board, port or self-test build
    return Project(board=board, path=out, env_name=env_name, model_hash=model_hash, key=key,
                   device_id=device_id, arena_bytes=result.arena_bytes,
                   selftest=selftest_header is not None, files=written)
