"""Host binding of the runtime's local differential privacy (firmware/runtime/privacy/
local_dp.h): the device's clip-and-noise step and its Gaussian noise stream, through the same C.

The round itself (``fltiny.devices.replay.HostRound``) calls ``flt_ldp_privatize`` inside
``flt_round_run``; these functions expose the two steps alone, for tests and oracles.
"""

from __future__ import annotations

import ctypes as C
from functools import cache

import numpy as np

from fltiny.native.errors import check

KEY_SIZE = 32  # FLT_LDP_KEY_SIZE


@cache
def _lib() -> C.CDLL:
    from fltiny.native.build import build_shared_library

    lib = C.CDLL(str(build_shared_library(["train", "proto", "crypto", "privacy"], name="fltldp")))
    f32p = C.POINTER(C.c_float)
    lib.flt_ldp_gaussians.restype = C.c_int
    lib.flt_ldp_gaussians.argtypes = [C.c_char_p, C.c_uint32, f32p, C.c_uint32]
    lib.flt_ldp_privatize.restype = C.c_int
    lib.flt_ldp_privatize.argtypes = [f32p, f32p, C.c_uint32, C.c_float, C.c_float, C.c_char_p,
                                      C.c_uint32, f32p, f32p]
    return lib


def _key(key: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise ValueError(f"a local-DP key is {KEY_SIZE} bytes, got {len(key)}")
    return bytes(key)


def _f32p(a: np.ndarray):
    return a.ctypes.data_as(C.POINTER(C.c_float))


def gaussians(key: bytes, nonce: int, n: int) -> np.ndarray:
    """The first ``n`` standard normal draws of the noise stream of (key, nonce)."""
    out = np.zeros(max(n, 1), np.float32)
    check(_lib().flt_ldp_gaussians(_key(key), nonce, _f32p(out), n), "flt_ldp_gaussians")
    return out[:n]


def privatize(params: np.ndarray, global_params: np.ndarray, clip: float, noise: float,
              key: bytes, nonce: int) -> tuple[np.ndarray, float]:
    """(global + clipped update + noise, the update's pre-clip L2 norm), as a device sends it
    before top-k."""
    p = np.ascontiguousarray(params, np.float32)
    g = np.ascontiguousarray(global_params, np.float32)
    if p.shape != g.shape or p.ndim != 1:
        raise ValueError(f"params {p.shape} and global {g.shape} must be equal 1-D shapes")
    out = np.zeros_like(p)
    norm = C.c_float(0.0)
    check(_lib().flt_ldp_privatize(_f32p(p), _f32p(g), p.size, clip, noise, _key(key), nonce,
                                   _f32p(out), C.byref(norm)), "flt_ldp_privatize")
    return out, float(norm.value)
