"""Batched decode-and-accumulate of delta payloads (firmware/runtime/delta/accumulate.h).

``Accumulator(n)`` holds a float64 running sum of a model's ``n`` parameters and the C
decoder's scratch (O(n) memory whatever the number of updates). ``add(payloads, weights)``
hands a whole batch of payload bytes to one C call, which validates every payload with the
rules of ``flt_payload_decode``, adds ``weight * dequantized delta`` of each valid one and
returns a per-payload status and squared L2 norm: one bad payload is rejected, not the batch.
``measure(payloads)`` is the same pass without adding (validation and norms only).

The library is its own build of the ``delta`` component (``libfltacc``) with its own ABI table,
so the ``flt_accum_t`` mirror below is checked against the compiler at load like lib.py's.
"""

from __future__ import annotations

import ctypes as C
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from fltiny.native import abi
from fltiny.native import lib as L
from fltiny.native.build import build_shared_library
from fltiny.native.errors import PayloadError
from fltiny.native.status import status_name


class Accum(C.Structure):
    _fields_ = [("sum", L.vp), ("n", L.u32), ("indices", L.vp), ("values", L.vp),
                ("work", L.vp), ("scales", L.vp), ("limits", L.Limits),
                ("weight_sum", C.c_double), ("accepted", L.u32), ("rejected", L.u32)]


MIRRORS: abi.Mirrors = {"flt_accum_t": Accum, "flt_payload_limits_t": L.Limits}


@cache
def _lib() -> C.CDLL:
    table_c = abi.abi_source(MIRRORS, ("delta/accumulate.h",))
    lib = C.CDLL(str(build_shared_library(["delta"], extra_sources=[table_c], name="fltacc")))
    lib.flt_accum_init.restype = C.c_int
    lib.flt_accum_init.argtypes = [C.POINTER(Accum), L.vp, L.u32, L.vp, L.vp, L.vp, L.u32, L.vp,
                                   L.u32]
    lib.flt_accum_add.restype = C.c_int
    lib.flt_accum_add.argtypes = [C.POINTER(Accum), L.vp, L.vp, L.vp, L.u32, L.vp, L.vp]
    abi.check(lib, MIRRORS, "fltiny/native/accumulate.py")
    return lib

__all__ = ["Accumulator", "BatchResult", "measure_payload"]


@dataclass(frozen=True)
class BatchResult:
    """Per-payload outcome of one batch: C status codes (0 = accepted) and squared norms
    (-1 for a rejected payload)."""

    status: np.ndarray  # int32
    sq_norms: np.ndarray  # float64

    @property
    def ok(self) -> np.ndarray:
        return self.status == 0

    def reason(self, i: int) -> str:
        """The status name of payload i ("FLT_OK" when it was accepted)."""
        return status_name(int(self.status[i]))


def _pointers(payloads: Sequence[bytes]) -> tuple[C.Array, np.ndarray]:
    # c_char_p items point into the bytes objects themselves (no copy); the array keeps them
    ptrs = (C.c_char_p * len(payloads))(*(p if isinstance(p, bytes) else bytes(p)
                                          for p in payloads))
    lens = np.fromiter((len(p) for p in payloads), dtype=np.uintp, count=len(payloads))
    return ptrs, lens


class Accumulator:
    """A float64 weighted sum of decoded payloads of an ``n``-parameter model."""

    def __init__(self, n: int) -> None:
        if n <= 0:
            raise PayloadError("FLT_ERR_ARG", f"an accumulator needs n >= 1 parameters, got {n}")
        self.n = n
        self.sum = np.zeros(n, np.float64)
        self._idx = np.zeros(n, np.uint32)
        self._val = np.zeros(n, np.int8)
        self._work = np.zeros(n, np.float32)
        self._sc = np.zeros(n, np.float32)
        self._acc = Accum()
        status = _lib().flt_accum_init(C.byref(self._acc), self.sum.ctypes.data, n,
                                       self._idx.ctypes.data, self._val.ctypes.data,
                                       self._work.ctypes.data, n, self._sc.ctypes.data, n)
        if status != 0:
            raise PayloadError(status_name(status), f"accumulator set-up: {status_name(status)}")

    @property
    def weight_sum(self) -> float:
        return float(self._acc.weight_sum)

    @property
    def accepted(self) -> int:
        return int(self._acc.accepted)

    def _call(self, payloads: Sequence[bytes], weights: np.ndarray | None) -> BatchResult:
        count = len(payloads)
        status = np.zeros(count, np.int32)
        sq = np.zeros(count, np.float64)
        if count == 0:
            return BatchResult(status, sq)
        ptrs, lens = _pointers(payloads)
        rc = _lib().flt_accum_add(C.byref(self._acc), ptrs, lens.ctypes.data,
                                  None if weights is None else weights.ctypes.data, count,
                                  status.ctypes.data, sq.ctypes.data)
        if rc != 0:
            raise PayloadError(status_name(rc), f"payload batch refused: {status_name(rc)}")
        return BatchResult(status, sq)

    def add(self, payloads: Sequence[bytes], weights: Sequence[float] | np.ndarray) -> BatchResult:
        """Validate every payload and add ``weights[i] *`` each valid one to the sum."""
        w = np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
        if w.size != len(payloads):
            raise PayloadError("FLT_ERR_SHAPE",
                               f"{len(payloads)} payloads but {w.size} weights")
        return self._call(payloads, w)

    def measure(self, payloads: Sequence[bytes]) -> BatchResult:
        """Validate and measure every payload; the sum is left unchanged."""
        return self._call(payloads, None)

    def mean(self) -> np.ndarray:
        """sum / weight_sum (float64); PayloadError when nothing with a positive weight was
        added."""
        if not self.weight_sum > 0:
            raise PayloadError("FLT_ERR_STATE", "no payload with a positive weight was added")
        return self.sum / self.weight_sum


def measure_payload(accumulator: Accumulator, payload: bytes) -> float:
    """The squared L2 norm of one payload's delta; PayloadError naming the C status when the
    payload is invalid for the accumulator's model."""
    res = accumulator.measure([payload])
    if not res.ok[0]:
        name = res.reason(0)
        if name == "FLT_ERR_SHAPE":
            raise PayloadError(name, f"delta payload is not for this model's {accumulator.n} "
                               "parameters")
        raise PayloadError(name, f"delta payload rejected: {name}")
    return float(res.sq_norms[0])
