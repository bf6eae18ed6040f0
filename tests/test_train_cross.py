"""firmware/runtime/train compiles warning-free (-Werror, STRICT_FLAGS) for the microcontroller
targets. Skipped only when a cross compiler is missing.

-ffreestanding: the runtime needs only <stdint.h>/<stddef.h>, which GCC itself provides in
freestanding mode; some cross toolchains (riscv64-unknown-elf without newlib) have no libc
headers at all. After compiling, the objects must not reference libm or any libc symbol."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fltiny.native.build import RUNTIME_DIR, STRICT_FLAGS, have_compiler

pytestmark = pytest.mark.cross

TARGETS = {
    "cortex-m0plus": ("arm-none-eabi-gcc", ["-mcpu=cortex-m0plus", "-mthumb"]),
    "cortex-m4f": ("arm-none-eabi-gcc",
                   ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "cortex-m7": ("arm-none-eabi-gcc", ["-mcpu=cortex-m7", "-mthumb"]),
    "rv32imc": ("riscv64-unknown-elf-gcc", ["-march=rv32imc_zicsr", "-mabi=ilp32"]),
}
SOURCES = sorted((RUNTIME_DIR / "train").glob("*.c"))
# compiler support routines (soft-float, 64-bit shifts/multiplies) are fine; libc/libm are not
ALLOWED_PREFIXES = ("flt_", "__aeabi_", "__", )


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_train_cross_compiles(target, tmp_path: Path):
    cc, arch = TARGETS[target]
    if not have_compiler(cc):
        pytest.skip(f"{cc} not installed")
    objs = []
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        cmd = [cc, *arch, *STRICT_FLAGS, "-ffreestanding", "-Os", f"-I{RUNTIME_DIR}", "-c",
               str(src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        assert not proc.stderr.strip(), proc.stderr  # warning-free
        objs.append(str(obj))
    nm = shutil.which(cc.replace("gcc", "nm"))
    if nm is None:
        return
    out = subprocess.run([nm, "-u", *objs], capture_output=True, text=True, check=True).stdout
    undefined = {line.split()[-1] for line in out.splitlines() if line.strip() and ":" not in line}
    bad = sorted(u for u in undefined if not u.startswith(ALLOWED_PREFIXES))
    assert not bad, f"unexpected external symbols (libc/libm?): {bad}"
    assert SOURCES
