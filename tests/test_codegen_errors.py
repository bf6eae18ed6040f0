"""Codegen refuses what it cannot generate exactly: unsupported ops and options, non-int8
tensors, corrupt or truncated flatbuffers -> fltiny.errors.CodegenError (never a crash)."""

from __future__ import annotations

import codegen_helpers as h
import numpy as np
import pytest

from fltiny.codegen import SUPPORTED_OPS, generate, read_tflite
from fltiny.errors import CodegenError


@pytest.fixture(scope="module")
def mlp_tflite() -> bytes:
    return h.tflite_for("mlp")


@pytest.mark.slow
def test_unsupported_op_is_named(tmp_path):
    tfl = h.tflite_for("tanh")
    with pytest.raises(CodegenError) as e:
        generate(tfl, tmp_path, prefix="tanh")
    msg = str(e.value)
    assert "TANH" in msg
    for op in ("CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX"):
        assert op in msg, "the message lists the supported ops"
    assert not list(tmp_path.iterdir()), "nothing is written on failure"


@pytest.mark.slow
def test_float_model_is_refused(tmp_path):
    import tensorflow as tf

    model, _ = h.build_mlp()
    tfl = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with pytest.raises(CodegenError, match="int8"):
        generate(tfl, tmp_path)


@pytest.mark.slow
def test_unsupported_fused_activation(tmp_path, mlp_tflite, monkeypatch):
    import fltiny.codegen.tflite_model as tm

    real = tm._options

    def tanh_fused(op, t):
        o = real(op, t)
        if op == "FULLY_CONNECTED":
            o["activation"] = "TANH"
        return o

    monkeypatch.setattr(tm, "_options", tanh_fused)
    with pytest.raises(CodegenError, match="TANH.*supported fused activations: NONE, RELU"):
        generate(mlp_tflite, tmp_path)


@pytest.mark.parametrize(
    "data",
    [b"", b"TFL3", b"\x00" * 7, b"\x10\x00\x00\x00TFL3" + b"\x00" * 4, b"not a flatbuffer at all"],
    ids=["empty", "ident-only", "zeros", "root-past-end", "text"],
)
def test_garbage_is_codegen_error(data, tmp_path):
    with pytest.raises(CodegenError):
        generate(data, tmp_path)


@pytest.mark.slow
def test_truncated_flatbuffer(mlp_tflite, tmp_path):
    n = len(mlp_tflite)
    for cut in sorted({8, 12, 16, 32, 64, n // 4, n // 2, n - 64, n - 1}):
        with pytest.raises(CodegenError):
            generate(mlp_tflite[:cut], tmp_path / str(cut))


@pytest.mark.slow
def test_corrupted_flatbuffer_never_crashes(mlp_tflite, tmp_path):
    """Random byte corruption: either valid code or a CodegenError, nothing else."""
    rng = np.random.default_rng(7)
    outcomes = {"ok": 0, "error": 0}
    for k in range(150):
        data = bytearray(mlp_tflite)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
            data[pos] = int(rng.integers(0, 256))
        try:
            generate(bytes(data), tmp_path / str(k), prefix="fuzz")
            outcomes["ok"] += 1
        except CodegenError:
            outcomes["error"] += 1
    assert outcomes["ok"] + outcomes["error"] == 150


def test_bad_prefix(tmp_path):
    with pytest.raises(CodegenError, match="C identifier"):
        generate(b"", tmp_path, prefix="9-bad")


def test_missing_file(tmp_path):
    with pytest.raises(CodegenError, match="cannot read"):
        generate(tmp_path / "nope.tflite", tmp_path)


@pytest.mark.slow
def test_reader_sees_the_model(mlp_tflite):
    m = read_tflite(mlp_tflite)
    assert [op.op for op in m.operators] == ["FULLY_CONNECTED"] * 3 + ["SOFTMAX"]
    t_in = m.tensors[m.inputs[0]]
    assert t_in.dtype == "int8" and t_in.shape == (1, 20)
    assert set(SUPPORTED_OPS) >= {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RESHAPE"}
