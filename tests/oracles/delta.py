"""Numpy oracle (tests only) of the on-device delta pipeline (firmware/runtime/delta/delta.c).

Top-k sparsification with error feedback (Lin et al., "Deep Gradient Compression", ICLR 2018;
Karimireddy et al., "Error Feedback Fixes SignSGD and other Gradient Compression Schemes",
ICML 2019) followed by symmetric int8 quantization per tensor or per block:

    acc      = (local - global) + residual                      float32, in this order
    indices  = the k largest |acc|, ties to the lower index, ascending
    scale    = max|v| / qmax                                    float32 division (qmax 127: int8)
    q        = clamp(round_half_even(v / scale), -qmax, qmax)   0 when scale == 0
    residual = acc - q * scale on the chosen indices, acc elsewhere (zeros without feedback)

Every operation is a single float32 IEEE operation, so the results equal the C runtime's bit
for bit (pinned by tests/vectors/delta). The C side selects with a radix select; this oracle
sorts, which is a deliberately different route to the same set.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_BLOCK = 65535
PPM = 1_000_000

F32 = npt.NDArray[np.float32]


class QuantMode(enum.IntEnum):
    TENSOR = 0
    BLOCK = 1


@dataclass(frozen=True)
class SparseDelta:
    """A sparse int8-quantized delta (the C ``flt_sparse_delta_t``)."""

    n: int
    indices: npt.NDArray[np.uint32]  # k entries, strictly increasing, < n
    values: npt.NDArray[np.int8]  # k entries in [-127, 127]
    scales: F32  # num_scales(k, mode, block_size) entries, finite, >= +0
    mode: QuantMode = QuantMode.TENSOR
    block_size: int = 0  # 1..MAX_BLOCK in BLOCK mode, 0 in TENSOR mode

    @property
    def k(self) -> int:
        return int(self.indices.size)

    def scale_per_value(self) -> F32:
        """The scale of each of the k values (float32)."""
        if self.k == 0:
            return np.zeros(0, dtype=np.float32)
        if self.mode == QuantMode.TENSOR:
            return np.full(self.k, self.scales[0], dtype=np.float32)
        return np.repeat(self.scales, self.block_size)[: self.k].astype(np.float32)

    def sent_values(self) -> F32:
        """values * scale, one float32 multiplication each."""
        return self.values.astype(np.float32) * self.scale_per_value()

    def equals(self, other: SparseDelta) -> bool:
        """Exact equality, scales compared bit for bit."""
        return (
            self.n == other.n
            and self.mode == other.mode
            and self.block_size == other.block_size
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
            and self.scales.view(np.uint32).tolist() == other.scales.view(np.uint32).tolist()
        )


@dataclass(frozen=True)
class CompressResult:
    delta: SparseDelta
    acc: F32  # (local - global) + residual_in
    residual: F32  # the residual to keep for the next round


def k_from_ppm(n: int, ppm: int) -> int:
    """k = min(n, max(1, floor(n * ppm / 1e6))) for n >= 1, 0 for n == 0 (exact integers)."""
    if n == 0:
        return 0
    return min(n, max(1, (n * ppm) // PPM))


def k_from_fraction(n: int, fraction: float) -> int:
    """k for a fraction of n: the fraction is first rounded to parts per million."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    return k_from_ppm(n, round(fraction * PPM))


def num_scales(k: int, mode: QuantMode, block_size: int) -> int:
    if k == 0:
        return 0
    if mode == QuantMode.TENSOR:
        return 1
    return -(-k // block_size)


def _f32(name: str, a: npt.ArrayLike) -> F32:
    arr = np.asarray(a)
    if arr.dtype != np.float32 or arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D float32 array, got {arr.dtype} {arr.shape}")
    return arr


def _mag_keys(acc: F32) -> npt.NDArray[np.uint32]:
    return acc.view(np.uint32) & np.uint32(0x7FFFFFFF)


def accumulate(local: F32, global_: F32, residual: F32 | None = None) -> F32:
    """(local - global) + residual in float32 (the addition is skipped when residual is None)."""
    local, global_ = _f32("local", local), _f32("global", global_)
    if local.shape != global_.shape:
        raise ValueError(f"local {local.shape} and global {global_.shape} differ in shape")
    acc = local - global_
    if residual is not None:
        residual = _f32("residual", residual)
        if residual.shape != acc.shape:
            raise ValueError(f"residual {residual.shape} differs from delta {acc.shape}")
        acc = acc + residual
    return acc.astype(np.float32, copy=False)


def topk_indices(acc: F32, k: int) -> npt.NDArray[np.uint32]:
    """Indices of the k largest |acc| (ties to the lower index), ascending."""
    acc = _f32("acc", acc)
    n = acc.size
    if not 0 <= k <= n:
        raise ValueError(f"k must be within [0, n={n}], got {k}")
    keys = _mag_keys(acc)
    if np.any(keys >= np.uint32(0x7F800000)):
        raise ValueError("acc holds inf or NaN")
    order = np.lexsort((np.arange(n), -keys.astype(np.int64)))
    return np.sort(order[:k]).astype(np.uint32)


def _round_clamp(x: F32, qmax: int) -> npt.NDArray[np.int8]:
    # np.rint rounds half to even (IEEE default), matching the integer rounding in C.
    return np.clip(np.rint(x), -qmax, qmax).astype(np.int8)


def qmax_of_bits(bits: int) -> int:
    """Largest magnitude of a ``bits``-wide symmetric value: 2^(bits-1) - 1 (8 -> 127)."""
    if not 2 <= bits <= 8:
        raise ValueError(f"value width must be 2..8 bits, got {bits}")
    return (1 << (bits - 1)) - 1


def quantize(
    chosen: F32, mode: QuantMode = QuantMode.TENSOR, block_size: int = 0, qmax: int = 127
) -> tuple[npt.NDArray[np.int8], F32]:
    """Symmetric quantization of the chosen values to -qmax..qmax; returns (values, scales)."""
    chosen = _f32("chosen", chosen)
    _check_mode(mode, block_size)
    k = chosen.size
    group = k if mode == QuantMode.TENSOR else block_size
    values = np.zeros(k, dtype=np.int8)
    scales = np.zeros(num_scales(k, mode, block_size), dtype=np.float32)
    for b, start in enumerate(range(0, k, max(group, 1))):
        v = chosen[start : start + group]
        m = (v.view(np.uint32) & np.uint32(0x7FFFFFFF)).max().view(np.float32)
        scale = np.float32(m) / np.float32(qmax)
        if scale != 0:
            values[start : start + group] = _round_clamp(v / scale, qmax)
        scales[b] = scale
    return values, scales


def _check_mode(mode: QuantMode, block_size: int) -> None:
    if mode == QuantMode.BLOCK and not 1 <= block_size <= MAX_BLOCK:
        raise ValueError(f"block_size must be within [1, {MAX_BLOCK}], got {block_size}")
    if mode not in (QuantMode.TENSOR, QuantMode.BLOCK):
        raise ValueError(f"unknown quantization mode {mode}")


def compress(
    local: F32,
    global_: F32,
    residual: F32 | None,
    *,
    k: int,
    mode: QuantMode = QuantMode.TENSOR,
    block_size: int = 0,
    error_feedback: bool = True,
    qmax: int = 127,
) -> CompressResult:
    """One device round (the C ``flt_delta_compress``). With error feedback a missing
    residual means zeros (and is still added, as in C); without, the residual is ignored."""
    mode = QuantMode(mode)
    _check_mode(mode, block_size)
    if error_feedback and residual is None:
        residual = np.zeros(np.shape(local), dtype=np.float32)  # first round; -0 + 0 = +0
    acc = accumulate(local, global_, residual if error_feedback else None)
    indices = topk_indices(acc, k)
    values, scales = quantize(acc[indices], mode, block_size, qmax)
    delta = SparseDelta(
        n=acc.size,
        indices=indices,
        values=values,
        scales=scales,
        mode=mode,
        block_size=block_size if mode == QuantMode.BLOCK else 0,
    )
    if error_feedback:
        new_residual = acc.copy()
        new_residual[indices] = acc[indices] - delta.sent_values()
    else:
        new_residual = np.zeros_like(acc)
    return CompressResult(delta=delta, acc=acc, residual=new_residual)


def dequantize(delta: SparseDelta) -> F32:
    """Dense float32 vector of the sent delta (zeros off the chosen indices)."""
    dense = np.zeros(delta.n, dtype=np.float32)
    dense[delta.indices] = delta.sent_values()
    return dense


def apply(delta: SparseDelta, params: F32) -> F32:
    """params + delta on the chosen indices (float32 multiply then add); returns a new array."""
    params = _f32("params", params)
    if params.size != delta.n:
        raise ValueError(f"params has {params.size} entries, delta n is {delta.n}")
    out = params.copy()
    out[delta.indices] = params[delta.indices] + delta.sent_values()
    return out
