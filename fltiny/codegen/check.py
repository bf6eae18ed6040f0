"""Run a bundle's generated C backbone on the host and compare it with the TFLM interpreter.

The generated C and the runtime's kernels are compiled into a shared library
(fltiny.native.build) and called through ctypes; TFLM is the reference, byte for byte.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fltiny.errors import ToolchainError


@dataclass(frozen=True)
class CCheck:
    samples: int
    elements: int
    mismatches: int

    def __str__(self) -> str:
        return (f"generated C vs TFLM: {self.mismatches}/{self.elements} output bytes differ "
                f"on {self.samples} held-out inputs")


class CBackbone:
    """The generated backbone, compiled for the host (with the reference kernels, or with a
    portable-C kernel variant of firmware/runtime/kernels/<kernel_variant>/)."""

    def __init__(self, c_dir: Path, prefix: str = "backbone",
                 kernel_variant: str | None = None) -> None:
        from fltiny.native.build import build_shared_library

        lib_path = build_shared_library(["kernels"], extra_sources=[c_dir / f"{prefix}.c"],
                                        include_dirs=[c_dir], name=prefix,
                                        kernel_variant=kernel_variant)
        self.lib = ctypes.CDLL(str(lib_path))
        self.fn = getattr(self.lib, f"{prefix}_invoke")
        self.fn.restype = ctypes.c_int
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

    def invoke(self, q_inputs: np.ndarray, output_size: int) -> np.ndarray:
        out = np.zeros((len(q_inputs), output_size), dtype=np.int8)
        for i, row in enumerate(q_inputs):
            src = np.ascontiguousarray(row, dtype=np.int8)
            status = self.fn(src.ctypes.data, out[i].ctypes.data)
            if status != 0:
                raise ToolchainError(f"generated backbone returned status {status}")
        return out


def compare_with_tflm(backbone: bytes, c_dir: Path, q_inputs: np.ndarray) -> CCheck:
    from fltiny.export.verify import run_tflm

    ref = run_tflm(backbone, q_inputs)
    got = CBackbone(c_dir).invoke(q_inputs, ref.shape[1])
    return CCheck(len(q_inputs), int(ref.size), int(np.count_nonzero(ref != got)))
