"""TFLite quantization arithmetic evaluated at code-generation time (the Python half of
kernels_common.h): multipliers, activation ranges, softmax/add/mean parameters.

Each function reproduces the published TFLite quantization spec the way TFLM prepares its
kernels (float32 tensor scales promoted to double; std::round = half away from zero), so the
constants baked into the generated C equal the ones TFLM computes at run time.
"""

from __future__ import annotations

import math

import numpy as np

from fltiny.errors import CodegenError

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """std::round: to nearest, ties away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float, what: str = "multiplier") -> tuple[int, int]:
    """(multiplier, shift) with real ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31)."""
    if not math.isfinite(real) or real < 0:
        raise CodegenError(f"{what}: invalid real multiplier {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise CodegenError(f"{what}: real multiplier {real:g} is too large (shift {shift} > 30)")
    return q_fixed, shift


def f32(x) -> float:
    """A value as the float32 TFLite stores, promoted to double."""
    return float(np.float32(x))


def _quantize_value(f: float, scale: float, zero_point: int) -> int:
    # TFLM: TfLiteRound(f / scale) in float, then + zero_point.
    q = float(np.float32(f) / np.float32(scale))
    return round_half_away(q) + zero_point


def activation_range(activation: str, scale: float, zero_point: int, op: str) -> tuple[int, int]:
    """The int8 clamp range of a fused activation (TFLM CalculateActivationRangeQuantized)."""
    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, _quantize_value(0.0, scale, zero_point)), INT8_MAX
    if activation == "RELU6":
        return (
            max(INT8_MIN, _quantize_value(0.0, scale, zero_point)),
            min(INT8_MAX, _quantize_value(6.0, scale, zero_point)),
        )
    if activation == "RELU_N1_TO_1":
        return (
            max(INT8_MIN, _quantize_value(-1.0, scale, zero_point)),
            min(INT8_MAX, _quantize_value(1.0, scale, zero_point)),
        )
    raise CodegenError(
        f"{op}: fused activation {activation} is not supported; "
        "supported fused activations: NONE, RELU, RELU6, RELU_N1_TO_1"
    )


def conv_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int, op: str
) -> tuple[list[int], list[int]]:
    """Per-output-channel (multiplier, shift): double(in) * double(filter[c]) / double(out)."""
    scales = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    if scales.size not in (1, channels):
        raise CodegenError(
            f"{op}: {scales.size} filter scales for {channels} output channels"
        )
    mults, shifts = [], []
    for c in range(channels):
        s = scales[c if scales.size > 1 else 0]
        real = f32(input_scale) * f32(s) / f32(output_scale)
        m, sh = quantize_multiplier(real, f"{op} channel {c}")
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def mean_multiplier(input_scale: float, output_scale: float, count: int, op: str) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum: input/output multiplier folded with 1/count."""
    m, shift = quantize_multiplier(f32(input_scale) / f32(output_scale), op)
    s = min((count.bit_length() - 1), 32)
    s = min(s, 31 + shift)
    m = (m << s) // count
    return int(m), shift - s


def add_params(s1: float, s2: float, so: float, op: str) -> dict:
    """TFLM int8 ADD: left shift 20, inputs rescaled to 2*max(s1, s2), output multiplier."""
    left_shift = 20
    twice_max = 2 * max(f32(s1), f32(s2))
    reals = {
        "input1": f32(s1) / twice_max,
        "input2": f32(s2) / twice_max,
        "output": twice_max / ((1 << left_shift) * f32(so)),
    }
    out = {"left_shift": left_shift}
    for k, r in reals.items():
        if not (0.0 < r < 1.0):
            raise CodegenError(f"{op}: {k} rescale {r:g} is outside (0, 1), as TFLM requires")
        m, sh = quantize_multiplier(r, f"{op} {k}")
        if sh > 0:
            raise CodegenError(f"{op}: {k} rescale {r:g} needs a positive shift")
        out[f"{k}_multiplier"] = m
        out[f"{k}_shift"] = sh
    return out


def softmax_params(beta: float, input_scale: float, op: str) -> dict:
    """TFLM int8 softmax: Q5.26 input rescale (PreprocessSoftmaxScaling) and diff_min."""
    integer_bits = 5
    real = min(f32(beta) * f32(input_scale) * float(1 << (31 - integer_bits)), (1 << 31) - 1.0)
    m, shift = quantize_multiplier(real, f"{op} input rescale")
    if shift < 0:
        raise CodegenError(f"{op}: beta * input_scale too small (negative left shift {shift})")
    radius = math.floor(
        1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << shift)
    )
    return {"input_multiplier": m, "input_left_shift": shift, "diff_min": -int(radius)}
