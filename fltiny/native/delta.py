"""The runtime's delta maths and payload codec (firmware/runtime/delta) for the host.

- ``compress``: ``flt_delta_compress`` (local - global + residual, top-k, int8 quantization,
  error feedback) -> ``SparseDelta`` and the new residual;
- ``apply``: ``flt_delta_apply`` (float32 multiply, then float32 add, as on the device);
- ``encode_payload`` / ``PayloadDecoder``: ``flt_payload_encode`` / ``flt_payload_decode``.
The aggregator decodes every device's DELTA with the same C the devices encode with, and
builds and applies the GLOBAL deltas it sends with the C the devices apply them with.
Failures raise ``PayloadError`` with the C status name.
"""

from __future__ import annotations

import ctypes as C
import enum
from dataclasses import dataclass

import numpy as np

from fltiny.native import lib as L
from fltiny.native.errors import PayloadError
from fltiny.native.status import status_name

__all__ = ["PayloadDecoder", "PayloadError", "QuantMode", "SparseDelta", "apply", "compress",
           "encode_payload"]


class QuantMode(enum.IntEnum):
    TENSOR = 0  # FLT_QUANT_TENSOR
    BLOCK = 1  # FLT_QUANT_BLOCK


@dataclass(frozen=True)
class SparseDelta:
    """A flt_sparse_delta_t with its arrays (indices uint32, values int8, scales float32)."""

    n: int
    mode: QuantMode
    block_size: int
    indices: np.ndarray
    values: np.ndarray
    scales: np.ndarray

    @property
    def k(self) -> int:
        return int(self.indices.size)

    def c(self) -> L.Sparse:
        """The C view (valid while self lives: it points into the arrays)."""
        return L.Sparse(self.n, self.k, int(self.mode), self.block_size,
                        self.indices.ctypes.data, self.values.ctypes.data, self.scales.ctypes.data)


def _ok(status: int, what: str) -> None:
    if status != 0:
        name = status_name(status)
        raise PayloadError(name, f"{what}: {name}")


def _f32(a: np.ndarray, n: int, name: str) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    if out.size != n:
        raise PayloadError("FLT_ERR_SHAPE", f"{name} has {out.size} values, expected {n}")
    return out


def compress(local: np.ndarray, global_: np.ndarray, residual: np.ndarray | None, *, k: int,
             mode: QuantMode = QuantMode.TENSOR, block_size: int = 0,
             error_feedback: bool = True, bits: int = 8) -> tuple[SparseDelta, np.ndarray]:
    """(delta, new residual) of ``flt_delta_compress`` with values of ``bits`` (2..8: integers
    in +-(2^(bits-1) - 1)); residual None means zeros."""
    qmax = int(L.rt().flt_delta_qmax_of_bits(bits))
    if qmax == 0:
        raise PayloadError("FLT_ERR_ARG", f"value width {bits} bits: use 2 to 8")
    g = np.ascontiguousarray(global_, dtype=np.float32).reshape(-1)
    n = g.size
    lo = _f32(local, n, "local")
    work = np.zeros(n, np.float32) if residual is None else _f32(residual, n, "residual").copy()
    n_scales = L.rt().flt_delta_num_scales(k, int(mode), block_size)
    idx = np.zeros(max(k, 1), np.uint32)
    val = np.zeros(max(k, 1), np.int8)
    sc = np.zeros(max(n_scales, 1), np.float32)
    cfg = L.DeltaConfig(k, int(mode), block_size, int(error_feedback), qmax)
    out = L.Sparse(0, 0, 0, 0, idx.ctypes.data, val.ctypes.data, sc.ctypes.data)
    _ok(L.rt().flt_delta_compress(C.byref(cfg), lo.ctypes.data, g.ctypes.data, work.ctypes.data,
                                  n, C.byref(out)), "delta compression")
    k_out = int(out.k)
    ns = int(L.rt().flt_delta_num_scales(k_out, out.mode, out.block_size))
    delta = SparseDelta(int(out.n), QuantMode(out.mode), int(out.block_size), idx[:k_out].copy(),
                        val[:k_out].copy(), sc[:ns].copy())
    return delta, work


def apply(delta: SparseDelta, params: np.ndarray) -> np.ndarray:
    """New parameters: ``flt_delta_apply`` on a copy of ``params``."""
    out = np.array(params, dtype=np.float32).reshape(-1)
    _ok(L.rt().flt_delta_apply(C.byref(delta.c()), out.ctypes.data, out.size), "delta apply")
    return out


def encode_payload(delta: SparseDelta) -> bytes:
    """``flt_payload_encode`` with the automatic (smallest) index format."""
    lib = L.rt()
    cap = int(lib.flt_payload_max_size(delta.n, delta.k, int(delta.mode), delta.block_size))
    out = (C.c_uint8 * cap)()
    n = C.c_size_t(0)
    _ok(lib.flt_payload_encode(C.byref(delta.c()), L.const("FLT_INDEX_AUTO"), out, cap,
                               C.byref(n)), "delta payload encoding")
    return bytes(out[: n.value])


class PayloadDecoder:
    """Decodes payloads of a model with ``n`` parameters (``flt_payload_decode``).

    Buffers are allocated once per decoder and reused: decoding is allocation-free apart from
    the returned arrays.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._idx = np.zeros(max(n, 1), np.uint32)
        self._val = np.zeros(max(n, 1), np.int8)
        self._sc = np.zeros(max(n, 1), np.float32)
        self._limits = L.Limits(n, n, n)

    def _decode(self, payload: bytes) -> L.Sparse:
        out = L.Sparse(0, 0, 0, 0, self._idx.ctypes.data, self._val.ctypes.data,
                       self._sc.ctypes.data)
        buf = np.frombuffer(payload, dtype=np.uint8)
        status = L.rt().flt_payload_decode(buf.ctypes.data if len(buf) else None, len(payload),
                                           C.byref(self._limits), C.byref(out))
        if status != 0:
            raise PayloadError(status_name(status),
                               f"delta payload rejected: {status_name(status)}")
        if out.n != self.n:
            raise PayloadError("FLT_ERR_SHAPE",
                               f"delta payload is for {out.n} parameters, the model has {self.n}")
        return out

    def decode(self, payload: bytes) -> SparseDelta:
        """The sparse delta (copies of the arrays)."""
        out = self._decode(payload)
        k = int(out.k)
        ns = int(L.rt().flt_delta_num_scales(k, out.mode, out.block_size))
        return SparseDelta(int(out.n), QuantMode(out.mode), int(out.block_size),
                           self._idx[:k].copy(), self._val[:k].copy(), self._sc[:ns].copy())

    def decode_sparse(self, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(indices, float32 values = q * scale); views into reused buffers, valid until the
        next call. Indices are strictly increasing, so ``acc[idx] += w * values`` is exact."""
        out = self._decode(payload)
        k = int(out.k)
        if k == 0:
            return self._idx[:0], np.zeros(0, np.float32)
        if out.mode == QuantMode.BLOCK:  # one scale per block_size consecutive values
            n_scales = -(-k // out.block_size)
            scale = np.repeat(self._sc[:n_scales], out.block_size)[:k]
        else:
            scale = self._sc[0]
        return self._idx[:k], self._val[:k].astype(np.float32) * scale

    def decode_dense(self, payload: bytes) -> np.ndarray:
        out = self._decode(payload)
        dense = np.zeros(self.n, np.float32)
        _ok(L.rt().flt_delta_dequantize(C.byref(out), dense.ctypes.data, self.n),
            "delta payload could not be applied")
        return dense
