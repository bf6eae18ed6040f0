"""A generated model using every kernel family (the "image" test model: conv, depthwise,
pools, fully connected) compiles for the microcontroller targets with the strict flags."""

from __future__ import annotations

import codegen_helpers as h
import pytest
from skip_policy import require_tools

from fltiny.codegen import generate
from fltiny.native.cross import TARGETS, compile_objects


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cross_gen")
    res = generate(h.tflite_for("image"), out, prefix="backbone")
    return out, res


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_cross_compile(target, generated, tmp_path):
    t = TARGETS[target]
    require_tools(t.cc)
    out_dir, res = generated
    compile_objects(t, [res.source], tmp_path, ["-Os", "-ffunction-sections"],
                    include_dirs=[out_dir])
