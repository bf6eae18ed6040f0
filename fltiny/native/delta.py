"""ctypes binding of the runtime's payload decoder for the host's hot path.

The aggregator decodes every device's DELTA payload with the same C code the devices encode
with (firmware/runtime/delta/payload.c); the numpy twin (fltiny.twins.payload) is the readable
reference and is pinned to it by tests/vectors/delta. Decoding errors raise the twin's
``PayloadError`` with the C status name.
"""

from __future__ import annotations

import ctypes as C
from functools import cache

import numpy as np

from fltiny.native.build import build_shared_library
from fltiny.native.status import status_name
from fltiny.twins.payload import PayloadError


class _Sparse(C.Structure):
    _fields_ = [
        ("n", C.c_uint32), ("k", C.c_uint32), ("mode", C.c_int), ("block_size", C.c_uint32),
        ("indices", C.POINTER(C.c_uint32)), ("values", C.POINTER(C.c_int8)),
        ("scales", C.POINTER(C.c_float)),
    ]


class _Limits(C.Structure):
    _fields_ = [("n_max", C.c_uint32), ("k_max", C.c_uint32), ("scales_max", C.c_uint32)]


@cache
def _lib() -> C.CDLL:
    lib = C.CDLL(str(build_shared_library(["delta"], name="fltdelta")))
    lib.flt_payload_decode.restype = C.c_int
    lib.flt_payload_decode.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(_Limits),
                                       C.POINTER(_Sparse)]
    lib.flt_delta_dequantize.restype = C.c_int
    lib.flt_delta_dequantize.argtypes = [C.POINTER(_Sparse), C.c_void_p, C.c_uint32]
    return lib


class PayloadDecoder:
    """Decodes payloads of a model with ``n`` parameters into dense float32 deltas.

    Buffers are allocated once per decoder and reused: decoding is allocation-free apart from
    the returned array.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._idx = np.zeros(max(n, 1), np.uint32)
        self._val = np.zeros(max(n, 1), np.int8)
        self._sc = np.zeros(max(n, 1), np.float32)
        self._limits = _Limits(n, n, n)

    def decode_sparse(self, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(indices, float32 values = q * scale); views into reused buffers, valid until the
        next call. Indices are strictly increasing, so ``acc[idx] += w * values`` is exact."""
        out = self._decode(payload)
        k = int(out.k)
        if k == 0:
            return self._idx[:0], np.zeros(0, np.float32)
        if out.mode == 1:  # FLT_QUANT_BLOCK: one scale per block_size consecutive values
            n_scales = -(-k // out.block_size)
            scale = np.repeat(self._sc[:n_scales], out.block_size)[:k]
        else:
            scale = self._sc[0]
        dense_vals = self._val[:k].astype(np.float32) * scale
        return self._idx[:k], dense_vals

    def _decode(self, payload: bytes) -> _Sparse:
        lib = _lib()
        out = _Sparse(0, 0, 0, 0,
                      self._idx.ctypes.data_as(C.POINTER(C.c_uint32)),
                      self._val.ctypes.data_as(C.POINTER(C.c_int8)),
                      self._sc.ctypes.data_as(C.POINTER(C.c_float)))
        buf = np.frombuffer(payload, dtype=np.uint8)
        status = lib.flt_payload_decode(buf.ctypes.data if len(buf) else None, len(payload),
                                        C.byref(self._limits), C.byref(out))
        if status != 0:
            raise PayloadError(status_name(status), f"delta payload rejected: {status_name(status)}")
        if out.n != self.n:
            raise PayloadError("FLT_ERR_SHAPE",
                               f"delta payload is for {out.n} parameters, the model has {self.n}")
        self._out = out
        return out

    def decode_dense(self, payload: bytes) -> np.ndarray:
        lib = _lib()
        out = self._decode(payload)
        dense = np.zeros(self.n, np.float32)
        status = lib.flt_delta_dequantize(C.byref(out), dense.ctypes.data, self.n)
        if status != 0:
            raise PayloadError(status_name(status),
                               f"delta payload could not be applied: {status_name(status)}")
        return dense
