"""Bare-metal programs on the QEMU boards: runtime C plus one test ``main``, no app, no model.

For on-target unit tests and micro-benchmarks of single runtime components (the crypto of
secure aggregation first): ``build_bare(board, sources, components, out)`` cross-compiles the
named runtime components, the bench markers (firmware/app/flt_bench.c), the program shell of
firmware/bare (startup, UART output, exit) and ``sources`` (one of them defines
``flt_bare_main``) with the runtime's strict flags at -Os, and links them with the board's own
linker script (templates/project/ld). ``run_bare(board, elf)`` runs it under QEMU and returns
(exit code, output); ``bench_bare(board, elf)`` runs it with ``-icount`` and the
instruction-count plugin and returns the net instructions of every marker interval (minus the
empty CALIBRATE interval, as fltiny.bench.ontarget does for the benchmark firmware).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fltiny.boards import Board
from fltiny.errors import ToolchainError, UsageError
from fltiny.native.build import RUNTIME_DIR, STRICT_FLAGS, runtime_sources, variant_flags
from fltiny.native.cross import TARGETS

from .ontarget import CALIBRATE, marker_addresses, parse_plugin_output
from .plugin import build_plugin

log = logging.getLogger(__name__)

FIRMWARE_DIR = RUNTIME_DIR.parent
BARE_DIR = FIRMWARE_DIR / "bare"
PORTS_DIR = FIRMWARE_DIR / "ports"
APP_DIR = FIRMWARE_DIR / "app"
OPT_FLAGS = ("-Os", "-ffunction-sections", "-fdata-sections")
# link with the multilib's plain ISA names (PLATFORM_NOTES: rv32imc_zicsr picks rv64 libs)
LINK_FLAGS = {
    "qemu-mps2": ("--specs=nano.specs", "--specs=nosys.specs"),
    "qemu-rv32": ("--specs=picolibc.specs", "-march=rv32imc", "-mabi=ilp32"),
}


def _shell(board: Board) -> list[Path]:
    if board.port == "qemu-mps2":
        return [BARE_DIR / "bare_mps2.c"]
    if board.port == "qemu-rv32":  # the device firmware's entry calls bare_rv32.c's reset
        return [PORTS_DIR / "qemu-rv32" / "start_rv32.S", BARE_DIR / "bare_rv32.c"]
    raise UsageError(f"bare programs run on the QEMU boards; {board.name} is not one")


def _linker_script(board: Board, out: Path) -> Path:
    from fltiny.build.project import stack_bytes
    from fltiny.templating import render

    tpl = "mps2.ld.j2" if board.port == "qemu-mps2" else "rv32.ld.j2"
    path = out / f"{board.name}.ld"
    path.write_text(render(f"project/ld/{tpl}", board=board, stack_bytes=stack_bytes(board),
                           flash_origin=board.memory["flash_origin"],
                           ram_origin=board.memory["ram_origin"],
                           data_address=int(board.emulator.get("data_address", 0))))
    return path


def _run(cmd: list[str]) -> None:
    log.debug("%s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or proc.stderr.strip():
        raise ToolchainError(f"{' '.join(cmd)}\n{proc.stderr.strip()}")


def build_bare(board: Board, sources: Sequence[Path], components: Sequence[str], out: Path,
               name: str = "bare", kernel_variant: str | None = None) -> Path:
    """Build ``out/<name>.elf`` for a QEMU board (see the module docstring); a warning is an
    error. With ``kernel_variant`` (e.g. fltiny.build.project.kernel_variant(board)) the files
    of firmware/runtime/kernels/<variant>/ replace the reference kernels of the same name, as
    in the board's firmware. Returns the ELF's path."""
    shell = _shell(board)
    target = TARGETS.get(board.arch)
    if target is None or not target.available():
        raise ToolchainError(f"no cross compiler for {board.arch} ({board.name}): see "
                             "docs/PLATFORM_NOTES or run 'make setup'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    objects = []
    all_sources = [*runtime_sources(components, kernel_variant), APP_DIR / "flt_bench.c", *shell,
                   *map(Path, sources)]
    for i, src in enumerate(all_sources):
        obj = out / f"{i:03d}_{src.parent.name}_{src.name}.o"
        flags = [] if src.suffix == ".S" else [*STRICT_FLAGS, *OPT_FLAGS, "-DFLT_APP_BENCH"]
        _run([target.cc, *target.flags, *flags, f"-I{RUNTIME_DIR}", *variant_flags(kernel_variant),
              f"-I{BARE_DIR}", f"-I{APP_DIR}", f"-I{PORTS_DIR / board.port}", "-c", str(src),
              "-o", str(obj)])
        objects.append(obj)
    elf = out / f"{name}.elf"
    machine = [f for f in target.flags if not f.startswith(("-march", "-mabi", "--specs"))]
    _run([target.cc, *machine, *LINK_FLAGS[board.port], "-nostartfiles", "-Wl,--gc-sections",
          f"-Wl,-Map,{out / (name + '.map')}", f"-T{_linker_script(board, out)}",
          *map(str, objects), "-lgcc", "-o", str(elf)])
    return elf


def run_bare(board: Board, elf: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run a bare program once; (exit code, serial output)."""
    from fltiny.devices.fleet import run_to_exit

    return run_to_exit(board, Path(elf), timeout)


def bench_bare(board: Board, elf: Path, timeout: float = 300.0) -> tuple[int, str, dict[int, int]]:
    """Run a bare program under ``-icount`` with the instruction-count plugin: (exit code,
    output, {marker id: net instructions of its one interval}). Each id must run exactly once."""
    from fltiny.devices.fleet import run_to_exit

    lib = build_plugin()
    marks = marker_addresses(Path(elf))
    with tempfile.TemporaryDirectory(prefix="fltiny-bare-") as tmp:
        report = Path(tmp) / "insn_count.txt"
        args = [f"mark={i}:{b:x}:{e:x}" for i, (b, e) in sorted(marks.items())]
        code, out = run_to_exit(board, Path(elf), timeout, icount=True,
                                extra_args=["-plugin", ",".join([str(lib), *args, f"out={report}"])])
        if not report.is_file():
            raise ToolchainError(f"{board.name}: the QEMU plugin wrote no report ({out.strip()[-300:]})")
        counts, _total = parse_plugin_output(report.read_text())
    counts = {i: c for i, c in counts.items() if c[0] or c[2]}
    bad = {i: c for i, c in counts.items() if c[2] or c[0] != 1}
    if bad:
        raise ToolchainError(f"{board.name}: unbalanced or repeated markers {bad}")
    overhead = counts[CALIBRATE][1]
    return code, out, {i: c[1] - overhead for i, c in counts.items() if i != CALIBRATE}
