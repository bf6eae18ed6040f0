"""Checks of an exported backbone: TFLM against LiteRT, and int8 against float.

TFLM (the ``tflite_micro`` interpreter) is the reference the firmware's kernels must match bit
for bit; LiteRT (tf.lite) differs from it by +-1 LSB on a fraction of a percent of
FULLY_CONNECTED outputs, so the comparison allows ``tolerance_lsb`` and reports the rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.errors import ExportError
from fltiny.export.quant import dequantize, quantize
from fltiny.export.split import Head
from fltiny.quiet import quiet_native_output
from fltiny.train import metric

TFLM_ARENA_BYTES = 256 * 1024


@dataclass(frozen=True)
class InterpreterAgreement:
    samples: int
    elements: int
    mismatches: int
    max_lsb: int

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / max(1, self.elements)


@dataclass(frozen=True)
class QuantAgreement:
    samples: int
    metric: str  # "accuracy" or "mae"
    float_value: float
    int8_value: float
    agreement: float  # classification: share of equal predictions; regression: mean |diff|


def run_tflm(model: bytes, inputs: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=TFLM_ARENA_BYTES)
    outputs = []
    for row in inputs:
        interp.set_input(row[None, ...], 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outputs)


def run_litert(model: bytes, inputs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with quiet_native_output():
        interp = Interpreter(
            model_content=model,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    outputs = []
    for row in inputs:
        interp.set_tensor(inp, row[None, ...])
        interp.invoke()
        outputs.append(interp.get_tensor(out).reshape(-1).copy())
    return np.stack(outputs)


def tflm_vs_litert(model: bytes, q_inputs: np.ndarray, tolerance_lsb: int = 2) -> InterpreterAgreement:
    micro = run_tflm(model, q_inputs).astype(np.int32)
    lite = run_litert(model, q_inputs).astype(np.int32)
    diff = np.abs(micro - lite)
    result = InterpreterAgreement(
        samples=len(q_inputs),
        elements=int(diff.size),
        mismatches=int(np.count_nonzero(diff)),
        max_lsb=int(diff.max(initial=0)),
    )
    if result.max_lsb > tolerance_lsb:
        raise ExportError(
            f"TFLM and LiteRT disagree by up to {result.max_lsb} LSB (tolerance {tolerance_lsb}) "
            f"on {result.mismatch_rate:.2%} of outputs: the int8 model is not portable"
        )
    return result


def int8_features(model: bytes, x_norm: np.ndarray, input_q: tuple[float, int],
                  output_q: tuple[float, int]) -> tuple[np.ndarray, np.ndarray]:
    """(quantized inputs, dequantized backbone features) through TFLM."""
    q = quantize(x_norm, *input_q)
    return q, dequantize(run_tflm(model, q), *output_q)


def int8_vs_float(float_pred: np.ndarray, int8_pred: np.ndarray, y: np.ndarray | None,
                  task: str) -> QuantAgreement:
    if task == "classification":
        agreement = float(np.mean(np.argmax(float_pred, -1) == np.argmax(int8_pred, -1)))
    else:
        agreement = float(np.mean(np.abs(float_pred.reshape(-1) - int8_pred.reshape(-1))))
    if y is None:
        name, fv, iv = ("accuracy" if task == "classification" else "mae"), float("nan"), float("nan")
    else:
        name, fv = metric(float_pred, y, task)
        _, iv = metric(int8_pred, y, task)
    return QuantAgreement(len(float_pred), name, fv, iv, agreement)


def head_predictions(head: Head, features: np.ndarray) -> np.ndarray:
    if features.shape[-1] != head.n_in:
        raise ExportError(f"backbone gives {features.shape[-1]} features, the head expects {head.n_in}")
    return head.forward(features)
