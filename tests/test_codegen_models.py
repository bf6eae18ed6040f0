"""Acceptance: generated C == TFLM, byte for byte, on 1,000 random int8 inputs per model.

Each architecture is built with Keras 3, converted to full int8 once per session, turned into
C by fltiny.codegen.generate, compiled with the runtime kernels (strict flags) into a shared
library and compared with tflite_micro's interpreter (the reference).
"""

from __future__ import annotations

import codegen_helpers as h
import numpy as np
import pytest

from fltiny.codegen import generate
from fltiny.native.build import build_shared_library

N_INPUTS = 1000
BASE = ["har", "image", "mlp", "residual", "dwnet", "reshape_only"]
# Variants made by editing the converted flatbuffer: MEAN with equal input/output
# quantization, an inserted int8 -> int8 QUANTIZE, per-tensor FULLY_CONNECTED weights (the
# converter emits per-channel ones).
VARIANTS = {
    "har_same_mean": ("har", h.with_same_scale_mean),
    "residual_same_mean": ("residual", h.with_same_scale_mean),
    "mlp_requant": ("mlp", h.with_requantize),
    "mlp_per_tensor_fc": ("mlp", h.with_per_tensor_fc),
    "image_per_tensor_fc": ("image", h.with_per_tensor_fc),
    "image_requant": ("image", lambda b: h.with_requantize(b, after_op=4, scale_factor=0.6,
                                                           zp_shift=-9)),
}
ARCHS = BASE + list(VARIANTS)
# Kernels: the reference ones and every portable-C target variant (firmware/runtime/kernels/
# <target>/ compiled for the host in place of the reference file of the same name). ARMv7E-M's
# uses ACLE intrinsics, so it is checked on qemu-m4f (tests/test_kernel_variants_ontarget.py).
KERNELS = ["reference", "rv32"]


@pytest.fixture(scope="session")
def converted() -> dict[str, bytes]:
    out = {}
    for name in BASE:
        out[name] = h.tflite_for(name)
    for name, (base, edit) in VARIANTS.items():
        out[name] = edit(out[base])
    return out


@pytest.fixture(scope="session")
def generated(converted, tmp_path_factory):
    out = {}
    for name, tfl in converted.items():
        out_dir = tmp_path_factory.mktemp(f"gen_{name}")
        out[name] = (generate(tfl, out_dir, prefix=name), out_dir)
    return out


@pytest.fixture(scope="session")
def reference_outputs(converted, generated):
    """(inputs, TFLM outputs) per architecture, computed once for every kernel set."""
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def get(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in cache:
            res, _ = generated[name]
            rng = np.random.default_rng(1234)
            x = rng.integers(-128, 128, size=(N_INPUTS, res.input_size), dtype=np.int8)
            # include the extremes
            x[0] = -128
            x[1] = 127
            x[2] = 0
            cache[name] = (x, h.tflm_outputs(converted[name], x))
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", ARCHS)
def test_generated_c_matches_tflm(name, kernels, generated, reference_outputs):
    res, out_dir = generated[name]
    variant = None if kernels == "reference" else kernels
    lib = build_shared_library(["kernels"], extra_sources=[res.source], include_dirs=[out_dir],
                               name=f"cg_{name}", kernel_variant=variant)
    x, want = reference_outputs(name)
    got = h.c_outputs(lib, name, x, res.output_size)
    # The comparison means something only if the outputs vary with the input.
    assert len(np.unique(want)) >= 4, f"{name}: degenerate reference outputs"
    assert res.arena_bytes == 0 or res.arena_bytes >= 16
    mismatches = int(np.count_nonzero(want != got))
    print(f"{name} ({kernels} kernels): arena {res.arena_bytes} B, const {res.const_bytes} B, "
          f"{N_INPUTS} inputs, mismatching bytes {mismatches}; ops {res.ops}")
    assert mismatches == 0, (
        f"{name} ({kernels} kernels): {mismatches} bytes differ from TFLM; "
        f"first rows C={got[:2]} TFLM={want[:2]}"
    )


@pytest.mark.slow
def test_generation_is_deterministic(tmp_path):
    tfl = h.tflite_for("residual")
    a = generate(tfl, tmp_path / "a", prefix="m")
    b = generate(tfl, tmp_path / "b", prefix="m")
    assert a.source.read_bytes() == b.source.read_bytes()
    assert a.header.read_bytes() == b.header.read_bytes()
    header = a.header.read_text()
    for macro in ("M_ARENA_BYTES", "M_INPUT_SIZE 192", "M_OUTPUT_SIZE 8", "M_INPUT_SCALE",
                  "M_INPUT_ZERO_POINT", "M_OUTPUT_SCALE", "M_OUTPUT_ZERO_POINT",
                  "flt_status_t m_invoke(const int8_t *input, int8_t *output)"):
        assert macro in header
    assert a.arena_bytes > 0 and a.const_bytes > 0
    assert [op.split()[0] for op in a.ops] == ["CONV_2D", "CONV_2D", "CONV_2D", "ADD", "MEAN",
                                              "FULLY_CONNECTED"]
