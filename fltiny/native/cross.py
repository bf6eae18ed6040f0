"""Cross builds of the runtime for the microcontroller targets (compile only), used by the
tests to hold every component to the strict flags on every instruction set, and to check
that the objects need nothing from libc or libm."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fltiny.errors import ToolchainError
from fltiny.native.build import RUNTIME_DIR, STRICT_FLAGS


@dataclass(frozen=True)
class CrossTarget:
    name: str
    cc: str
    flags: tuple[str, ...]

    @property
    def nm(self) -> str:
        return self.cc.replace("-gcc", "-nm")

    def available(self) -> bool:
        return shutil.which(self.cc) is not None


# Debian's riscv64-unknown-elf has no newlib headers: picolibc's specs provide them.
# (Compile with rv32imc_zicsr; a link would use -march=rv32imc, see PLATFORM_NOTES.)
TARGETS = {
    t.name: t
    for t in (
        CrossTarget("cortex-m0plus", "arm-none-eabi-gcc", ("-mcpu=cortex-m0plus", "-mthumb")),
        CrossTarget("cortex-m4f", "arm-none-eabi-gcc",
                    ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")),
        CrossTarget("cortex-m7", "arm-none-eabi-gcc",
                    ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard")),
        CrossTarget("rv32imc", "riscv64-unknown-elf-gcc",
                    ("--specs=picolibc.specs", "-march=rv32imc_zicsr", "-mabi=ilp32")),
    )
}

# Compiler support routines (soft float, 64-bit arithmetic) and the block moves GCC may emit.
ALLOWED_UNDEFINED = re.compile(r"^(flt_\w+|__aeabi_\w+|__\w+|mem(set|cpy|move))$")


def compile_objects(target: CrossTarget, sources: Sequence[Path], out_dir: Path,
                    extra_flags: Sequence[str] = (), include_dirs: Sequence[Path] = ()) -> list[Path]:
    """Compile each source with the strict flags; a warning is an error. Returns the objects."""
    objects = []
    for src in sources:
        obj = out_dir / f"{src.parent.name}_{src.stem}.o"
        cmd = [target.cc, *target.flags, *STRICT_FLAGS, *extra_flags, f"-I{RUNTIME_DIR}",
               *(f"-I{d}" for d in include_dirs), "-c", str(src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or proc.stderr.strip():
            raise ToolchainError(f"{' '.join(cmd)}\n{proc.stderr.strip()}")
        objects.append(obj)
    return objects


def foreign_symbols(target: CrossTarget, objects: Sequence[Path]) -> list[str]:
    """Undefined symbols that are neither the runtime's own nor compiler support routines."""
    out = subprocess.run([target.nm, "-u", *map(str, objects)], capture_output=True, text=True,
                         check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip() and ":" not in line}
    return sorted(n for n in names if not ALLOWED_UNDEFINED.match(n))
