"""The generated models and kernels run clean under AddressSanitizer and UBSan (signed
overflow, out-of-bounds reads of the arena or the weights) and still match TFLM."""

from __future__ import annotations

import subprocess

import codegen_helpers as h
import numpy as np
import pytest

from fltiny.codegen import generate
from fltiny.native.build import build_executable

N_INPUTS = 200
NAMES = ["har", "image", "mlp", "residual", "dwnet"]

DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
#include "{prefix}.h"

int main(void)
{{
    static int8_t in[{PREFIX}_INPUT_SIZE];
    static int8_t out[{PREFIX}_OUTPUT_SIZE];
    while (fread(in, 1, sizeof in, stdin) == sizeof in) {{
        flt_status_t s = {prefix}_invoke(in, out);
        if (s != FLT_OK) {{
            fprintf(stderr, "invoke: %s\n", flt_status_str(s));
            return 1;
        }}
        if (fwrite(out, 1, sizeof out, stdout) != sizeof out) {{
            return 2;
        }}
    }}
    return 0;
}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["reference", "rv32"])  # rv32: portable C, kernels/rv32/
@pytest.mark.parametrize("name", NAMES)
def test_generated_model_under_sanitizers(name, kernels, tmp_path):
    tfl = h.tflite_for(name)
    res = generate(tfl, tmp_path, prefix=name)
    driver = tmp_path / "driver.c"
    driver.write_text(DRIVER.format(prefix=name, PREFIX=name.upper()))
    exe = build_executable([driver, res.source], ["kernels"], name=f"cg_{name}_san",
                           include_dirs=[tmp_path],
                           kernel_variant=None if kernels == "reference" else kernels)
    rng = np.random.default_rng(99)
    x = rng.integers(-128, 128, size=(N_INPUTS, res.input_size), dtype=np.int8)
    proc = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert not proc.stderr, proc.stderr.decode(errors="replace")
    got = np.frombuffer(proc.stdout, dtype=np.int8).reshape(N_INPUTS, res.output_size)
    want = h.tflm_outputs(tfl, x)
    assert np.array_equal(got, want)
