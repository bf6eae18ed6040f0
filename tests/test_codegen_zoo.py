"""Every zoo backbone, through the real converter: generated C == TFLM byte for byte on 1,000
random int8 inputs (issue 3's acceptance for the product's own models), with the reference
kernels and with each portable-C target variant (firmware/runtime/kernels/rv32/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fltiny.codegen import generate
from fltiny.codegen.check import CBackbone
from fltiny.data import load_dataset
from fltiny.data.base import Normalization
from fltiny.models import ZOO

pytestmark = pytest.mark.slow

BACKBONE_MODELS = sorted(name for name, m in ZOO.items() if m.head_layers > 0)


def _randomise(model, seed: int) -> None:
    """Non-zero weights and biases so every bias and requantization path is exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in weights])


KERNELS = ["reference", "rv32"]
_CONVERTED: dict[str, tuple[bytes, tuple[int, ...]]] = {}
_EXPECTED: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _converted(name: str) -> tuple[bytes, tuple[int, ...]]:
    """(int8 backbone .tflite, input shape) of a zoo model with random weights, once per
    session (the conversion costs more than a compile)."""
    if name not in _CONVERTED:
        from fltiny.export.convert import to_int8_tflite
        from fltiny.export.split import split_model

        zoo = ZOO[name]
        ds = load_dataset(zoo.dataset)
        model = zoo.build(ds.input_shape, ds.n_outputs)
        _randomise(model, seed=len(name))
        split = split_model(model, zoo.head_layers)
        rep = Normalization.fit(ds.factory().x).apply(ds.factory().x[:200])
        _CONVERTED[name] = (to_int8_tflite(split.backbone, rep), tuple(ds.input_shape))
    return _CONVERTED[name]


def _expected(name: str, tflite: bytes, shape: tuple[int, ...], input_size: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(1,000 int8 inputs, TFLM's outputs for them), once per session."""
    if name not in _EXPECTED:
        from fltiny.export.verify import run_tflm

        rng = np.random.default_rng(7)
        inputs = rng.integers(-128, 128, size=(1000, input_size), dtype=np.int8)
        inputs[0], inputs[1] = -128, 127
        _EXPECTED[name] = (inputs, run_tflm(tflite, inputs.reshape((1000, *shape))))
    return _EXPECTED[name]


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", BACKBONE_MODELS)
def test_zoo_backbone_c_matches_tflm(name: str, kernels: str, tmp_path: Path):
    tflite, shape = _converted(name)
    result = generate(tflite, tmp_path, prefix="backbone")
    inputs, expected = _expected(name, tflite, shape, result.input_size)
    variant = None if kernels == "reference" else kernels
    got = CBackbone(tmp_path, kernel_variant=variant).invoke(inputs, result.output_size)
    assert expected.shape == got.shape
    assert len(np.unique(expected)) > 2, "reference outputs do not vary: the check would be weak"
    mismatches = int(np.count_nonzero(expected != got))
    assert mismatches == 0, (f"{name} ({kernels} kernels): {mismatches} of {expected.size} "
                             "output bytes differ")
