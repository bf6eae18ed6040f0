"""Affine int8 quantization of model inputs and outputs, as TFLite defines it.

real = scale * (q - zero_point). Quantizing rounds half away from zero (TFLite's QUANTIZE
uses std::round), then clamps to [-128, 127].
"""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    v = x.astype(np.float32) / np.float32(scale)
    rounded = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.int32) - zero_point) * np.float32(scale)).astype(np.float32)
