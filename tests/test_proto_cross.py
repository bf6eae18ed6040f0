"""firmware/runtime/proto compiles warning-free with the strict flags (STRICT_FLAGS, -Werror)
for the microcontroller targets, freestanding (no libc headers needed), at -Os and -O2 and with
a smaller FLT_PROTO_MAX_CHUNK; the objects reference no libc/libm symbol. Skipped only when a
cross compiler is missing."""

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
    "rv32imc": ("riscv64-unknown-elf-gcc", ["-march=rv32imc_zicsr", "-mabi=ilp32"]),
}
SOURCES = sorted((RUNTIME_DIR / "proto").glob("*.c"))
ALLOWED_PREFIXES = ("flt_", "__aeabi_", "__")  # compiler support routines only
VARIANTS = {"Os": ["-Os"], "O2": ["-O2"], "chunk64": ["-Os", "-DFLT_PROTO_MAX_CHUNK=64u"]}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_proto_cross_compiles(target, variant, tmp_path: Path):
    cc, arch = TARGETS[target]
    if not have_compiler(cc):
        pytest.skip(f"{cc} not installed")
    assert SOURCES
    cmd = [cc, *arch, *STRICT_FLAGS, "-ffreestanding", *VARIANTS[variant],
           f"-I{RUNTIME_DIR}", "-c", *map(str, SOURCES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    assert not proc.stderr.strip(), proc.stderr  # warning-free
    objs = [str(tmp_path / (src.stem + ".o")) for src in SOURCES]
    nm = shutil.which(cc.replace("gcc", "nm"))
    if nm is None:
        return
    out = subprocess.run([nm, "-u", *objs], capture_output=True, text=True, check=True).stdout
    undefined = {line.split()[-1] for line in out.splitlines() if line.strip() and ":" not in line}
    bad = sorted(u for u in undefined if not u.startswith(ALLOWED_PREFIXES))
    assert not bad, f"unexpected external symbols (libc/libm?): {bad}"
