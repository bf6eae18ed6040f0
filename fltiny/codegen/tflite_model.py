"""Read a ``.tflite`` flatbuffer into plain Python objects (no TensorFlow import).

Only what code generation needs: the first subgraph's tensors (shape, type, constant data,
quantization), its operators (builtin code and options), and its inputs and outputs. The
field numbers are those of the public TFLite schema (schema.fbs). Any malformed input raises
:class:`fltiny.errors.CodegenError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import CodegenError

from .flatbuffer import Buffer, FlatbufferError, Table
from .ops import ACTIVATIONS, BUILTIN_NAMES, NUMPY_DTYPES, PADDINGS, TENSOR_TYPES


@dataclass
class Quant:
    scale: np.ndarray  # float32, 1 entry per tensor or per channel
    zero_point: np.ndarray  # int64
    axis: int

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None  # constant data (reshaped), None for activations
    quant: Quant | None
    dynamic: bool = False  # shape_signature has -1 entries

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(NUMPY_DTYPES.get(self.dtype, "u1")).itemsize

    @property
    def is_const(self) -> bool:
        return self.data is not None

    def scale(self) -> float:
        if self.quant is None or self.quant.scale.size == 0:
            raise CodegenError(f"tensor '{self.name}' is not quantized (no scale)")
        return float(self.quant.scale[0])

    def zero_point(self) -> int:
        if self.quant is None or self.quant.zero_point.size == 0:
            return 0
        return int(self.quant.zero_point[0])


@dataclass
class Operator:
    index: int
    op: str  # builtin name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class TfliteModel:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    description: str = ""


def _activation(code: int, op: str) -> str:
    if code not in ACTIVATIONS:
        raise CodegenError(f"{op}: unknown fused activation code {code}")
    return ACTIVATIONS[code]


def _padding(code: int, op: str) -> str:
    if code not in PADDINGS:
        raise CodegenError(f"{op}: unknown padding code {code}")
    return PADDINGS[code]


class _Absent:
    """Stands for an omitted options table: every field takes its schema default."""

    def scalar(self, index: int, fmt: str, default=0):
        return default

    def vector_scalars(self, index: int, dtype: str):
        return None


def _options(op: str, t: Table | _Absent | None) -> dict:
    """Decode the builtin options table of the ops the generator knows (schema field order)."""
    if t is None:
        t = _Absent()
    if op == "CONV_2D":
        return {
            "padding": _padding(t.scalar(0, "b"), op),
            "stride_w": t.scalar(1, "i"), "stride_h": t.scalar(2, "i"),
            "activation": _activation(t.scalar(3, "b"), op),
            "dilation_w": t.scalar(4, "i", 1), "dilation_h": t.scalar(5, "i", 1),
        }
    if op == "DEPTHWISE_CONV_2D":
        return {
            "padding": _padding(t.scalar(0, "b"), op),
            "stride_w": t.scalar(1, "i"), "stride_h": t.scalar(2, "i"),
            "depth_multiplier": t.scalar(3, "i"),
            "activation": _activation(t.scalar(4, "b"), op),
            "dilation_w": t.scalar(5, "i", 1), "dilation_h": t.scalar(6, "i", 1),
        }
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return {
            "padding": _padding(t.scalar(0, "b"), op),
            "stride_w": t.scalar(1, "i"), "stride_h": t.scalar(2, "i"),
            "filter_w": t.scalar(3, "i"), "filter_h": t.scalar(4, "i"),
            "activation": _activation(t.scalar(5, "b"), op),
        }
    if op == "FULLY_CONNECTED":
        return {
            "activation": _activation(t.scalar(0, "b"), op),
            "weights_format": t.scalar(1, "b"),
            "keep_num_dims": bool(t.scalar(2, "B")),
        }
    if op == "SOFTMAX":
        return {"beta": t.scalar(0, "f", 0.0)}
    if op == "ADD":
        return {"activation": _activation(t.scalar(0, "b"), op)}
    if op in ("MEAN", "SUM", "REDUCE_MAX"):
        return {"keep_dims": bool(t.scalar(0, "B"))}
    if op == "RESHAPE":
        ns = t.vector_scalars(0, "<i4")
        return {"new_shape": None if ns is None else [int(v) for v in ns]}
    if op == "SQUEEZE":
        sd = t.vector_scalars(0, "<i4")
        return {"squeeze_dims": [] if sd is None else [int(v) for v in sd]}
    return {}


def read_tflite(data: bytes) -> TfliteModel:
    """Parse a TFLite flatbuffer. Raises CodegenError when it is not one."""
    if len(data) < 8:
        raise CodegenError(f"not a .tflite flatbuffer: only {len(data)} bytes")
    if bytes(data[4:8]) != b"TFL3":
        raise CodegenError(
            "not a .tflite flatbuffer (file identifier is not 'TFL3'); "
            "pass the backbone .tflite produced by the int8 export"
        )
    try:
        return _read(data)
    except FlatbufferError as e:
        raise CodegenError(f"corrupt or truncated .tflite flatbuffer: {e}") from e
    except (ValueError, OverflowError, UnicodeError, MemoryError) as e:
        raise CodegenError(f"corrupt .tflite flatbuffer: {e}") from e


def _read(data: bytes) -> TfliteModel:
    buf = Buffer(data)
    model = buf.root()
    version = model.scalar(0, "I")
    if version != 3:
        raise CodegenError(f"unsupported TFLite schema version {version} (expected 3)")
    opcodes = []
    for oc in model.vector_tables(1):
        code = max(oc.scalar(0, "b"), oc.scalar(3, "i"))
        name = BUILTIN_NAMES.get(code, f"BUILTIN_{code}")
        if code == 32:
            name = f"CUSTOM({oc.string(1) or '?'})"
        opcodes.append(name)
    buffers = []
    for b in model.vector_tables(4):
        raw = b.vector_bytes(0)
        offset, size = b.scalar(1, "Q"), b.scalar(2, "Q")
        if (raw is None or len(raw) == 0) and offset > 1:
            if offset + size > len(data):
                raise CodegenError(f"buffer data at {offset}+{size} beyond the end of the file")
            raw = bytes(data[offset : offset + size])
        buffers.append(raw or b"")
    subgraphs = model.vector_tables(2)
    if len(subgraphs) != 1:
        raise CodegenError(
            f"the model has {len(subgraphs)} subgraphs; code generation supports exactly one "
            "(no control flow ops)"
        )
    sg = subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.vector_tables(0)):
        shape_v = t.vector_scalars(0, "<i4")
        shape = tuple(int(v) for v in shape_v) if shape_v is not None else ()
        ttype = t.scalar(1, "b")
        dtype = TENSOR_TYPES.get(ttype, f"type{ttype}")
        name = t.string(3) or f"tensor{i}"
        sig = t.vector_scalars(7, "<i4")
        dynamic = bool(sig is not None and np.any(sig < 0)) or any(d < 0 for d in shape)
        bidx = t.scalar(2, "I")
        if bidx >= max(len(buffers), 1) and bidx != 0:
            raise CodegenError(f"tensor '{name}' refers to missing buffer {bidx}")
        raw = buffers[bidx] if bidx < len(buffers) else b""
        arr = None
        if raw:
            if dtype not in NUMPY_DTYPES:
                raise CodegenError(f"constant tensor '{name}' has unsupported type {dtype}")
            dt = np.dtype(NUMPY_DTYPES[dtype])
            n = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if len(raw) != n * dt.itemsize:
                raise CodegenError(
                    f"constant tensor '{name}': {len(raw)} bytes for shape {shape} of {dtype}"
                )
            arr = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        q = t.table(4)
        quant = None
        if q is not None:
            scale = q.vector_scalars(2, "<f4")
            zp = q.vector_scalars(3, "<i8")
            if scale is not None and scale.size:
                quant = Quant(
                    scale=scale.astype(np.float32),
                    zero_point=zp if zp is not None else np.zeros(scale.size, np.int64),
                    axis=q.scalar(6, "i"),
                )
        tensors.append(Tensor(i, name, shape, dtype, arr, quant, dynamic))
    n_t = len(tensors)

    def idx_list(tbl: Table, field_index: int, what: str) -> list[int]:
        v = tbl.vector_scalars(field_index, "<i4")
        out = [] if v is None else [int(x) for x in v]
        for x in out:
            if x < -1 or x >= n_t:
                raise CodegenError(f"{what} refers to tensor {x}; the model has {n_t}")
        return out

    operators = []
    for k, o in enumerate(sg.vector_tables(3)):
        oi = o.scalar(0, "I")
        if oi >= len(opcodes):
            raise CodegenError(f"operator {k} uses opcode {oi}; the model has {len(opcodes)}")
        name = opcodes[oi]
        ins = idx_list(o, 1, f"operator {k} ({name}) input")
        outs = idx_list(o, 2, f"operator {k} ({name}) output")
        opts = _options(name, o.table(4))
        operators.append(Operator(k, name, ins, outs, opts))
    inputs = idx_list(sg, 1, "subgraph input")
    outputs = idx_list(sg, 2, "subgraph output")
    return TfliteModel(tensors, operators, inputs, outputs, model.string(3) or "")
