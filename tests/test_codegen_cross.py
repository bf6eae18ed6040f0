"""The kernels and a generated model compile for the microcontroller targets with the strict
flags (-Werror ...): Cortex-M0+, Cortex-M4F (hard float), Cortex-M7 (thumb), RV32IMC."""

from __future__ import annotations

import subprocess

import codegen_helpers as h
import pytest

from fltiny.codegen import generate
from fltiny.native.build import RUNTIME_DIR, STRICT_FLAGS, have_compiler

TARGETS = {
    "cortex-m0plus": ("arm-none-eabi-gcc", ["-mcpu=cortex-m0plus", "-mthumb"]),
    "cortex-m4f": ("arm-none-eabi-gcc",
                   ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "cortex-m7": ("arm-none-eabi-gcc", ["-mcpu=cortex-m7", "-mthumb"]),
    # Debian ships the RISC-V C library headers as picolibc (no newlib): use its specs.
    "rv32imc": ("riscv64-unknown-elf-gcc",
                ["--specs=picolibc.specs", "-march=rv32imc_zicsr", "-mabi=ilp32"]),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cross_gen")
    res = generate(h.tflite_for("image"), out, prefix="backbone")
    return out, res


def _sources():
    # The kernels only: flt_status.c belongs to the runtime core (its own cross test).
    return sorted((RUNTIME_DIR / "kernels").glob("*.c"))


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.parametrize("target", list(TARGETS))
def test_cross_compile(target, generated, tmp_path):
    cc, flags = TARGETS[target]
    if not have_compiler(cc):
        pytest.skip(f"{cc} is not installed")
    out_dir, res = generated
    for src in [*_sources(), res.source]:
        cmd = [cc, *STRICT_FLAGS, *flags, "-Os", "-ffunction-sections", f"-I{RUNTIME_DIR}",
               f"-I{out_dir}", "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
