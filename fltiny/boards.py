"""Board descriptions: one TOML file per board in boards/ (docs/boards.md).

Each file names the MCU, clock, RAM and flash budgets, the PlatformIO platform/board/framework,
the firmware port, the transports and, for emulated boards, the emulator and where the data blob
goes, and for real boards the datasheet figures of the energy estimate ([power]: fltiny.report.energy,
docs/boards.md "Energy per round (estimate)"). `load_boards()` reads and validates all of them;
`get_board(name)` one of them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fltiny.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
BOARDS_DIR = REPO_ROOT / "boards"
PLATFORMS_DIR = REPO_ROOT / "platforms"

PORTS = ("esp-idf", "arduino", "qemu-mps2", "qemu-rv32", "native")
LOCAL_PLATFORMS = ("fltiny-qemu-arm", "fltiny-qemu-riscv", "fltiny-native")


@dataclass(frozen=True)
class LinkPower:
    """What moving bytes over one of a board's links costs ([power.links.<transport>]): the
    current the whole chip draws while a byte is sent or received (None: the CPU's active
    current, for a UART the firmware waits on), and the bit rate that sets a byte's time."""

    transport: str  # one of the board's transports ("uart", "wifi-tcp")
    bits_per_second: float
    bits_per_byte: int  # 10 for UART 8N1 (start + 8 data + stop), 8 for a radio's payload
    source: str
    tx_ma: float | None = None
    rx_ma: float | None = None

    @property
    def seconds_per_byte(self) -> float:
        return self.bits_per_byte / self.bits_per_second


@dataclass(frozen=True)
class Power:
    """A real board's datasheet figures for the energy estimate ([power]); the clock is the
    board's clock_hz. ``instructions_from`` names the emulated board whose measured instruction
    counts stand in for this core (fltiny.report.energy.MEASURED)."""

    supply_v: float
    active_ma: float  # the chip's current with the CPU running at clock_hz
    active_source: str  # datasheet, section / table, conditions
    instructions_from: str
    approximate: bool  # a figure not read from a datasheet table (the source says why)
    links: dict[str, LinkPower] = field(default_factory=dict)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    mcu: str
    arch: str
    clock_hz: int
    ram_bytes: int
    flash_bytes: int
    port: str
    transports: tuple[str, ...]
    storage: str  # "nvs", "file", "none"
    max_windows: int
    pio_platform: str
    pio_board: str
    pio_framework: str
    pio_ldscript: str = ""  # [platformio] ldscript: board_build.ldscript of the rendered project
    memory: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)
    espidf: dict[str, Any] = field(default_factory=dict)  # ESP-IDF boards: target
    path: Path | None = None
    # windows the device's own window store may hold at most (None: sized from the RAM budget,
    # fltiny.build.project.store_windows); 0 on a board whose RAM has no room for one
    store_windows: int | None = None
    power: Power | None = None  # real boards: datasheet figures of the energy estimate

    @property
    def emulated(self) -> bool:
        """QEMU boards and the native process: run here, built through local platforms."""
        return self.pio_platform in LOCAL_PLATFORMS

    @property
    def local_platform_dir(self) -> Path | None:
        return PLATFORMS_DIR / self.pio_platform if self.emulated else None

    @property
    def qemu(self) -> bool:
        return self.port in ("qemu-mps2", "qemu-rv32")

    @property
    def esp(self) -> bool:
        return self.port == "esp-idf"

    @property
    def ram_regions(self) -> tuple[tuple[int, int], ...]:
        """Address ranges [lo, hi) whose sections count against ram_bytes ([memory] ram_regions);
        empty: every allocated writable section counts (fltiny.build.memory)."""
        return tuple((int(lo), int(hi)) for lo, hi in self.memory.get("ram_regions", ()))


_REQUIRED = ("name", "description", "mcu", "arch", "clock_hz", "ram_bytes", "flash_bytes", "port",
             "transports", "storage", "max_windows")


def _number(table: dict[str, Any], key: str, where: str) -> float:
    v = table.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise UsageError(f"board file {where}: {key} must be a positive number")
    return float(v)


def _text(table: dict[str, Any], key: str, where: str) -> str:
    v = table.get(key)
    if not isinstance(v, str) or not v.strip():
        raise UsageError(f"board file {where}: {key} must be a non-empty string")
    return v


def _power(data: dict[str, Any], path: Path) -> Power | None:
    """[power] of a board file (None when absent); every figure positive, every source named,
    every link one of the board's transports."""
    raw = data.get("power")
    if raw is None:
        return None
    where = f"{path} [power]"
    if not isinstance(raw, dict):
        raise UsageError(f"board file {where} must be a table")
    links: dict[str, LinkPower] = {}
    if not isinstance(raw.get("links", {}), dict):
        raise UsageError(f"board file {where}: links must be tables [power.links.<transport>]")
    for name, lk in raw.get("links", {}).items():
        lw = f"{path} [power.links.{name}]"
        if not isinstance(lk, dict):
            raise UsageError(f"board file {lw} must be a table")
        if name not in data["transports"]:
            raise UsageError(f"board file {lw}: '{name}' is not one of the board's transports "
                             f"({', '.join(data['transports'])})")
        bpb = lk.get("bits_per_byte")
        if isinstance(bpb, bool) or not isinstance(bpb, int) or bpb <= 0:
            raise UsageError(f"board file {lw}: bits_per_byte must be a positive integer")
        links[name] = LinkPower(
            name, _number(lk, "bits_per_second", lw), bpb, _text(lk, "source", lw),
            _number(lk, "tx_ma", lw) if "tx_ma" in lk else None,
            _number(lk, "rx_ma", lw) if "rx_ma" in lk else None)
    approx = raw.get("approximate", False)
    if not isinstance(approx, bool):
        raise UsageError(f"board file {where}: approximate must be true or false")
    return Power(_number(raw, "supply_v", where), _number(raw, "active_ma", where),
                 _text(raw, "active_source", where), _text(raw, "instructions_from", where),
                 approx, links)


def _parse(path: Path) -> Board:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"board file {path}: {exc}") from exc
    missing = [k for k in _REQUIRED if k not in data]
    pio = data.get("platformio", {})
    missing += [f"platformio.{k}" for k in ("platform", "board", "framework") if k not in pio]
    if missing:
        raise UsageError(f"board file {path} lacks {', '.join(missing)}")
    if data["port"] not in PORTS:
        raise UsageError(f"board file {path}: unknown port '{data['port']}' (ports: {', '.join(PORTS)})")
    if path.stem != data["name"]:
        raise UsageError(f"board file {path}: name '{data['name']}' differs from the file name")
    for k in ("ram_bytes", "flash_bytes", "max_windows"):
        if not isinstance(data[k], int) or data[k] <= 0:
            raise UsageError(f"board file {path}: {k} must be a positive integer")
    store = data.get("store_windows")
    if store is not None and (not isinstance(store, int) or isinstance(store, bool) or store < 0):
        raise UsageError(f"board file {path}: store_windows must be a non-negative integer")
    regions = data.get("memory", {}).get("ram_regions", [])
    if not isinstance(regions, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) for v in r) and r[0] < r[1]
            for r in regions):
        raise UsageError(f"board file {path}: memory.ram_regions must be a list of [low, high] "
                         "addresses with low < high")
    if data["port"] == "esp-idf" and not data.get("espidf", {}).get("target"):
        raise UsageError(f"board file {path}: an esp-idf board needs [espidf] target (e.g. esp32c3)")
    return Board(
        name=data["name"], description=data["description"], mcu=data["mcu"], arch=data["arch"],
        clock_hz=int(data["clock_hz"]), ram_bytes=data["ram_bytes"], flash_bytes=data["flash_bytes"],
        port=data["port"], transports=tuple(data["transports"]), storage=data["storage"],
        max_windows=data["max_windows"], pio_platform=pio["platform"], pio_board=pio["board"],
        pio_framework=pio["framework"], pio_ldscript=str(pio.get("ldscript", "")),
        memory=dict(data.get("memory", {})),
        emulator=dict(data.get("emulator", {})), espidf=dict(data.get("espidf", {})), path=path,
        store_windows=store, power=_power(data, path),
    )


def load_boards(directory: Path = BOARDS_DIR) -> dict[str, Board]:
    """All boards, by name, in file-name order."""
    boards = {b.name: b for b in (_parse(p) for p in sorted(directory.glob("*.toml")))}
    for b in boards.values():
        src = boards.get(b.power.instructions_from) if b.power else None
        if b.power and (src is None or not src.emulated):
            raise UsageError(f"board file {b.path} [power]: instructions_from "
                             f"'{b.power.instructions_from}' is not an emulated board "
                             f"({', '.join(n for n, o in boards.items() if o.emulated)})")
    return boards


def get_board(name: str) -> Board:
    boards = load_boards()
    if name not in boards:
        raise UsageError(f"unknown board '{name}'; boards: {', '.join(boards)} (see 'fltiny boards')")
    return boards[name]


def human_bytes(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} kB"
    return f"{n} B"
