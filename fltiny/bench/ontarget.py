"""Run the benchmark firmware under QEMU with the instruction-count plugin.

`bench_firmware(board, bundle, out)` builds the firmware variant FLT_APP_BENCH
(firmware/app/flt_benchmain.c replaces the device loop); `run_bench(board, elf, blob)` runs it
with the data blob at the board's data address, `-icount shift=0,sleep=off` and the plugin
(tools/qemu-plugin/insn_count.c), and returns a `BenchRun`: per marker id the number of calls
and the instructions executed between its markers, minus the marker overhead measured by the
empty CALIBRATE interval, plus what the firmware printed (n windows, payload bytes, stack
high-water mark).

Instruction counts, not cycles: QEMU models no pipeline, caches or flash wait states.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fltiny.boards import Board
from fltiny.errors import ToolchainError, UsageError

from .plugin import build_plugin

log = logging.getLogger(__name__)

# marker ids: the same numbers as firmware/app/flt_bench.h
CALIBRATE, INFER, FEATURES, TRAIN, DELTA, ROUND = range(6)
NAMES = {CALIBRATE: "calibrate", INFER: "inference", FEATURES: "features", TRAIN: "train",
         DELTA: "delta", ROUND: "round"}
MAX_IDS = 8

_LINE = re.compile(r"fltiny bench: n=(\d+) params=(\d+) payload=(\d+) stack_hwm=(\d+) "
                   r"stack_reserve=(\d+)")


@dataclass
class Interval:
    calls: int
    raw: int   # instructions between the markers, summed over calls
    net: int   # raw minus calls * the marker overhead


@dataclass
class BenchRun:
    board: str
    n: int
    params: int
    payload_bytes: int
    stack_hwm: int
    stack_reserve: int
    overhead: int
    total_insns: int
    intervals: dict[int, Interval] = field(default_factory=dict)

    def net(self, mark: int) -> int:
        return self.intervals[mark].net


def marker_addresses(elf: Path) -> dict[int, tuple[int, int]]:
    """{id: (begin, end)} from the symbols flt_bench_b<id> / flt_bench_e<id> (Thumb bit cleared)."""
    from elftools.elf.elffile import ELFFile

    found: dict[str, int] = {}
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        if symtab is None:
            raise UsageError(f"{elf} has no symbol table")
        for sym in symtab.iter_symbols():
            if re.fullmatch(r"flt_bench_[be]\d+", sym.name) and sym["st_info"]["type"] == "STT_FUNC":
                found[sym.name] = int(sym["st_value"]) & ~1
    marks = {}
    for i in range(MAX_IDS):
        b, e = found.get(f"flt_bench_b{i}"), found.get(f"flt_bench_e{i}")
        if b is not None and e is not None:
            marks[i] = (b, e)
    if CALIBRATE not in marks:
        raise UsageError(f"{elf} has no benchmark markers: build it with bench=True (FLT_APP_BENCH)")
    if len({a for pair in marks.values() for a in pair}) != 2 * len(marks):
        raise ToolchainError(f"{elf}: two benchmark markers share an address (folded by the linker?)")
    return marks


def bench_firmware(board: Board, bundle: Path, out: Path, **kw):
    """Build the benchmark firmware for a QEMU board; returns fltiny.build.FirmwareBuild."""
    from fltiny.build.firmware import build_firmware

    if not board.qemu:
        raise UsageError(f"the benchmark firmware runs on QEMU boards; {board.name} is not one")
    return build_firmware(board, Path(bundle), Path(out), bench=True, **kw)


def parse_plugin_output(text: str) -> tuple[dict[int, tuple[int, int, int]], int]:
    """({id: (calls, sum, unmatched)}, total instructions) from the plugin's report."""
    marks = {}
    total = -1
    for line in text.splitlines():
        m = re.fullmatch(r"mark id=(\d+) calls=(\d+) sum=(\d+) unmatched=(\d+)", line.strip())
        if m:
            marks[int(m[1])] = (int(m[2]), int(m[3]), int(m[4]))
        m = re.fullmatch(r"total insns=(\d+)", line.strip())
        if m:
            total = int(m[1])
    if total < 0:
        raise ToolchainError(f"the plugin wrote no report: {text[-300:]!r}")
    return marks, total


def run_bench(board: Board, elf: Path, blob: bytes, timeout: float = 120.0) -> BenchRun:
    """Run the benchmark firmware once under QEMU with the plugin (see the module docstring)."""
    from fltiny.devices.fleet import run_to_exit

    lib = build_plugin()
    marks = marker_addresses(Path(elf))
    with tempfile.TemporaryDirectory(prefix="fltiny-bench-") as tmp:
        report = Path(tmp) / "insn_count.txt"
        args = [f"mark={i}:{b:x}:{e:x}" for i, (b, e) in sorted(marks.items())]
        code, out = run_to_exit(board, Path(elf), timeout, data=blob, icount=True,
                                extra_args=["-plugin", ",".join([str(lib), *args, f"out={report}"])])
        if code != 0:
            raise ToolchainError(f"{board.name}: the benchmark firmware exited {code}: "
                                 f"{out.strip()[-300:]}")
        if not report.is_file():
            raise ToolchainError(f"{board.name}: the QEMU plugin wrote no report ({out.strip()[-300:]})")
        counts, total = parse_plugin_output(report.read_text())
    m = _LINE.search(out)
    if not m:
        raise ToolchainError(f"{board.name}: no result line from the benchmark firmware: {out[-300:]!r}")
    counts = {i: c for i, c in counts.items() if c[0] or c[2]}  # drop the unused ids
    bad = {i: c for i, c in counts.items() if c[2] or c[0] != 1}
    if bad:
        raise ToolchainError(f"{board.name}: unbalanced or repeated markers {bad}")
    overhead = counts[CALIBRATE][1]
    intervals = {i: Interval(c[0], c[1], c[1] - c[0] * overhead) for i, c in counts.items()}
    return BenchRun(board=board.name, n=int(m[1]), params=int(m[2]), payload_bytes=int(m[3]),
                    stack_hwm=int(m[4]), stack_reserve=int(m[5]), overhead=overhead,
                    total_insns=total, intervals=intervals)


def bench_blob(bundle: Path, n_windows: int, device_id: int = 1) -> bytes:
    """The data blob of fleet device `device_id` with n_windows of its training windows (no
    personal test split: the benchmark firmware trains on every window of its blob)."""
    from fltiny.devices.data import fleet_blobs

    b = fleet_blobs(Path(bundle), device_id, max_windows=n_windows)[device_id - 1]
    return b.training(n_windows).encode()
