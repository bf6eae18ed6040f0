"""firmware/runtime/delta compiles warning-free with the strict flags for the microcontroller
targets, and the objects pull in no allocator, stdio or libm (only compiler helpers and
memset/memcpy, which freestanding C requires anyway)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from fltiny.native.build import RUNTIME_DIR, STRICT_FLAGS

SOURCES = sorted((RUNTIME_DIR / "delta").glob("*.c"))

TARGETS = {
    "cortex-m0plus": ("arm-none-eabi-gcc", ["-mcpu=cortex-m0plus", "-mthumb"]),
    "cortex-m4-hard": (
        "arm-none-eabi-gcc",
        ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    ),
    "cortex-m7-hard": (
        "arm-none-eabi-gcc",
        ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
    ),
    # the Debian riscv64-unknown-elf toolchain ships no libc headers: the component builds
    # freestanding (it only needs stdint.h, stddef.h and float.h)
    "rv32imc": (
        "riscv64-unknown-elf-gcc",
        ["-march=rv32imc_zicsr", "-mabi=ilp32", "-ffreestanding"],
    ),
}

ALLOWED_UNDEFINED = re.compile(r"^(__aeabi_\w+|__\w+[sd]f\d?|__\w+si\d?|__\w+di\d?|mem(set|cpy|move))$")


@pytest.mark.cross
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_delta_cross_compiles(target, opt, tmp_path):
    cc, flags = TARGETS[target]
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    nm = cc.replace("-gcc", "-nm")
    assert SOURCES, "no sources in firmware/runtime/delta"
    for src in SOURCES:
        obj = tmp_path / f"{src.stem}.o"
        cmd = [cc, *STRICT_FLAGS, opt, *flags, f"-I{RUNTIME_DIR}", "-c", str(src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        assert proc.stderr == "", proc.stderr  # warning-free
        if shutil.which(nm):
            undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True,
                                       check=True).stdout.split()
            names = [u for u in undefined if u != "U"]
            bad = [u for u in names if not (ALLOWED_UNDEFINED.match(u) or u.startswith("flt_"))]
            assert not bad, f"{src.name} on {target} needs {bad}"
