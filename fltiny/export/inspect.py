"""What a .tflite file holds: operators, tensors and their sizes, input/output quantization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.codegen import SUPPORTED_OPS


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    scale: float
    zero_point: int
    per_channel: bool


@dataclass(frozen=True)
class TfliteSummary:
    size: int
    ops: tuple[str, ...]
    tensors: tuple[TensorInfo, ...]
    input: TensorInfo
    output: TensorInfo

    def unsupported_ops(self) -> list[str]:
        return sorted({op for op in self.ops if op not in SUPPORTED_OPS})

    def largest_tensors(self, n: int = 5) -> list[TensorInfo]:
        return sorted(self.tensors, key=lambda t: t.nbytes, reverse=True)[:n]


def _tensor(detail: dict) -> TensorInfo:
    qp = detail.get("quantization_parameters", {})
    scales = np.asarray(qp.get("scales", []))
    zps = np.asarray(qp.get("zero_points", []))
    shape = tuple(int(d) for d in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    return TensorInfo(
        index=int(detail["index"]),
        name=str(detail["name"]),
        shape=shape,
        dtype=dtype.name,
        nbytes=int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize,
        scale=float(scales[0]) if scales.size else float(detail["quantization"][0]),
        zero_point=int(zps[0]) if zps.size else int(detail["quantization"][1]),
        per_channel=bool(scales.size > 1),
    )


def summarize(model: bytes) -> TfliteSummary:
    from ai_edge_litert.interpreter import Interpreter

    from fltiny.quiet import quiet_native_output

    with quiet_native_output():
        interp = Interpreter(model_content=model)
    ops = tuple(str(op["op_name"]) for op in interp._get_ops_details())
    tensors = tuple(_tensor(d) for d in interp.get_tensor_details())
    inp = _tensor(interp.get_input_details()[0])
    out = _tensor(interp.get_output_details()[0])
    return TfliteSummary(len(model), ops, tensors, inp, out)
