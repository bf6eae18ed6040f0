"""The whole runtime (core, kernels, train, delta, proto, crypto), the portable round and a
generated model compile warning-free with the strict flags for Cortex-M0+, M4F, M7 and RV32IMC,
at -Os and -O2, and need nothing from libc or libm. A missing cross compiler fails the test (run
make setup), never skips it."""

from __future__ import annotations

from pathlib import Path

import pytest
from skip_policy import require_tools

from fltiny.native.build import RUNTIME_DIR
from fltiny.native.cross import TARGETS, compile_objects, foreign_symbols

pytestmark = pytest.mark.cross

COMPONENTS = {
    "core": sorted((RUNTIME_DIR / "core").glob("*.c")),
    "kernels": sorted((RUNTIME_DIR / "kernels").glob("*.c")),
    "train": sorted((RUNTIME_DIR / "train").glob("*.c")),
    "delta": sorted((RUNTIME_DIR / "delta").glob("*.c")),
    "proto": sorted((RUNTIME_DIR / "proto").glob("*.c")),
    "crypto": sorted((RUNTIME_DIR / "crypto").glob("*.c")),
}
APP_DIR = RUNTIME_DIR.parent / "app"
# kernels_common.c's flt_quantize_multiplier (host-side prepare; codegen precomputes the
# multipliers, so firmware links drop it) uses frexp and floor: exact functions, no
# transcendental rounding. Nothing else may reach into libc or libm.
EXACT_LIBM = {"kernels": ["floor", "frexp"]}


@pytest.mark.parametrize("opt", ["-Os", "-O2"])
@pytest.mark.parametrize("component", sorted(COMPONENTS))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_component_cross_compiles(target, component, opt, tmp_path: Path):
    t = TARGETS[target]
    require_tools(t.cc)
    assert COMPONENTS[component], f"no sources in {component}"
    objects = compile_objects(t, COMPONENTS[component], tmp_path, [opt, "-ffunction-sections"])
    assert foreign_symbols(t, objects) == EXACT_LIBM.get(component, [])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_small_chunk_protocol_builds(target, tmp_path: Path):
    t = TARGETS[target]
    require_tools(t.cc)
    compile_objects(t, COMPONENTS["proto"], tmp_path, ["-Os", "-DFLT_PROTO_MAX_CHUNK=64u"])


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_generated_model_and_round_cross_compile(target, har_tiny_bundle, tmp_path: Path):
    """The product's own generated backbone (har-tiny) and the portable round function."""
    t = TARGETS[target]
    require_tools(t.cc)
    gen = har_tiny_bundle / "c"
    objects = compile_objects(t, [gen / "backbone.c", APP_DIR / "flt_round.c"], tmp_path,
                              ["-Os"], include_dirs=[gen, APP_DIR])
    assert foreign_symbols(t, objects) == []
