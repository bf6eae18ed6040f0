"""Lowering of TFLite operators to generated-C nodes.

Each supported operator becomes one small node object that knows its constant arrays, its
kernel params struct, its prepare function and its kernel call; templates/model_ops.j2 holds one
macro per node kind that renders the call. Anything unsupported is a CodegenError naming the op
or option and listing what is supported — never silently different code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import CodegenError

from . import quant
from .tflite_model import Operator, Tensor, TfliteModel

COMPUTE_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "MEAN", "ADD", "SOFTMAX", "QUANTIZE",
)
ALIAS_OPS = ("RESHAPE", "EXPAND_DIMS", "SQUEEZE")
SUPPORTED_OPS = COMPUTE_OPS + ALIAS_OPS
MAX_ACC_TERMS = 65536  # FLT_MAX_ACC_TERMS in kernels_common.h
INT32_MAX = 2**31 - 1


def unsupported_op(op: Operator) -> CodegenError:
    return CodegenError(
        f"operator {op.index} ({op.op}) is not supported by fltiny codegen; "
        f"supported ops: {', '.join(SUPPORTED_OPS)}"
    )


@dataclass
class ConstArray:
    """A constant array in flash: `static const <ctype> <name>[n] = {...};`."""

    name: str
    ctype: str  # int8_t / int32_t
    values: np.ndarray
    comment: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * (1 if self.ctype == "int8_t" else 4)

    def rows(self, per_row: int = 16) -> list[str]:
        flat = [int(v) for v in self.values.reshape(-1)]
        if self.ctype == "int32_t":
            # INT32_MIN cannot be written as a plain literal in C
            text = [("(-2147483647 - 1)" if v == -(2**31) else str(v)) for v in flat]
        else:
            text = [str(v) for v in flat]
        return [", ".join(text[i : i + per_row]) for i in range(0, len(text), per_row)]


@dataclass
class Node:
    """One kernel call of the generated invoke()."""

    kind: str  # macro name in model_ops.j2
    index: int  # operator index in the model
    op: str  # TFLite builtin name
    params_type: str  # C struct type
    prepare_fn: str
    params: dict  # field -> C initializer text
    header: str  # kernels/<file>.h
    inputs: list[Tensor]
    outputs: list[Tensor]
    consts: list[ConstArray] = field(default_factory=list)
    args: dict = field(default_factory=dict)  # pointer expressions, filled by the generator

    @property
    def params_name(self) -> str:
        return f"op{self.index}_params"

    def summary(self) -> str:
        ins = " ".join(str(list(t.shape)) for t in self.inputs)
        outs = " ".join(str(list(t.shape)) for t in self.outputs)
        return f"{self.op} {ins} -> {outs}"


def c_array(values) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def _require_int8(t: Tensor, op: Operator, role: str) -> None:
    if t.dtype != "int8":
        raise CodegenError(
            f"operator {op.index} ({op.op}): {role} tensor '{t.name}' is {t.dtype}; "
            "generated code needs int8 activations (export with full int8 quantization: "
            "TFLITE_BUILTINS_INT8, int8 input and output)"
        )
    if t.quant is None:
        raise CodegenError(f"operator {op.index} ({op.op}): {role} tensor '{t.name}' has no "
                           "quantization parameters")
    if t.dynamic:
        raise CodegenError(f"operator {op.index} ({op.op}): {role} tensor '{t.name}' has a "
                           "dynamic shape; re-wrap the model on a fixed batch-1 input")


def _const(model: TfliteModel, op: Operator, pos: int, role: str, dtype: str) -> Tensor | None:
    if pos >= len(op.inputs) or op.inputs[pos] < 0:
        return None
    t = model.tensors[op.inputs[pos]]
    if not t.is_const:
        raise CodegenError(f"operator {op.index} ({op.op}): {role} must be a constant tensor")
    if t.dtype != dtype:
        raise CodegenError(f"operator {op.index} ({op.op}): {role} is {t.dtype}, expected {dtype}")
    return t


def _padding(padding: str, stride: int, dil: int, in_size: int, k: int, out_size: int,
             op: Operator) -> int:
    """TFLM ComputePaddingHeightWidth for one dimension; checks the output size."""
    eff = (k - 1) * dil + 1
    if stride <= 0 or dil <= 0:
        raise CodegenError(f"operator {op.index} ({op.op}): stride {stride} / dilation {dil}")
    if padding == "SAME":
        expect = (in_size + stride - 1) // stride
    else:
        expect = (in_size + stride - eff) // stride
    if expect != out_size:
        raise CodegenError(
            f"operator {op.index} ({op.op}): output size {out_size} does not match "
            f"{padding} padding (expected {expect})"
        )
    total = max(0, (out_size - 1) * stride + eff - in_size)
    return total // 2


def _nhwc(t: Tensor, op: Operator, role: str) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise CodegenError(f"operator {op.index} ({op.op}): {role} must be 4-D, got {t.shape}")
    return tuple(int(d) for d in t.shape)  # type: ignore[return-value]


def _check_left_shift(worst: int, shifts: list[int], op: Operator) -> None:
    """MBQM multiplies the accumulator by 2^shift in int32 when shift > 0 (as TFLM does)."""
    s = max(shifts)
    if s > 0 and worst * (1 << s) > INT32_MAX:
        raise CodegenError(f"operator {op.index} ({op.op}): requantization multiplier > 1 "
                           f"(shift {s}) could overflow the int32 accumulator")


def _check_bias(bias: Tensor | None, terms: int, op: Operator) -> int:
    """The accumulator range argument of the kernels: terms * 128 * 255 + |bias| < 2^31."""
    if terms > MAX_ACC_TERMS:
        raise CodegenError(f"operator {op.index} ({op.op}): {terms} products per output exceed "
                           f"the int32 accumulator bound ({MAX_ACC_TERMS})")
    worst = terms * 128 * 255
    if bias is not None and bias.data.size:
        worst += int(np.max(np.abs(bias.data.astype(np.int64))))
    if worst > INT32_MAX:
        raise CodegenError(f"operator {op.index} ({op.op}): the int32 accumulator could "
                           f"overflow (worst case {worst})")
    return worst


class Lowering:
    """Turns the model's operators into nodes; `prefix` names the constant arrays."""

    def __init__(self, model: TfliteModel, prefix: str) -> None:
        self.model = model
        self.prefix = prefix

    def t(self, i: int) -> Tensor:
        return self.model.tensors[i]

    def lower(self, op: Operator) -> Node:
        fn = getattr(self, "_" + op.op.lower(), None)
        if op.op not in COMPUTE_OPS or fn is None:
            raise unsupported_op(op)
        return fn(op)

    def _io(self, op: Operator, n_in: int = 1) -> tuple[list[Tensor], Tensor]:
        if len(op.outputs) != 1 or len(op.inputs) < n_in:
            raise CodegenError(f"operator {op.index} ({op.op}): unexpected inputs/outputs")
        ins = [self.t(i) for i in op.inputs[:n_in]]
        for k, t in enumerate(ins):
            if not t.is_const:
                _require_int8(t, op, f"input {k}")
        out = self.t(op.outputs[0])
        _require_int8(out, op, "output")
        return ins, out

    def _act(self, op: Operator, out: Tensor) -> tuple[int, int]:
        return quant.activation_range(op.options.get("activation", "NONE"), out.scale(),
                                      out.zero_point(), f"operator {op.index} ({op.op})")

    def _weights(self, op: Operator, w: Tensor, b: Tensor | None, channels: int):
        name = f"{self.prefix}_op{op.index}"
        consts = [ConstArray(f"{name}_weights", "int8_t", w.data, f"{w.name} {list(w.shape)}")]
        if b is not None:
            if b.data.size != channels:
                raise CodegenError(f"operator {op.index} ({op.op}): bias has {b.data.size} "
                                   f"entries for {channels} channels")
            consts.append(ConstArray(f"{name}_bias", "int32_t", b.data, f"{b.name}"))
        if w.quant is None:
            raise CodegenError(f"operator {op.index} ({op.op}): weights are not quantized")
        if np.any(w.quant.zero_point != 0):
            raise CodegenError(f"operator {op.index} ({op.op}): weights must be symmetric "
                               "(zero point 0)")
        return consts

    def _conv_2d(self, op: Operator) -> Node:
        (x,), y = self._io(op)
        w = _const(self.model, op, 1, "filter", "int8")
        b = _const(self.model, op, 2, "bias", "int32")
        n, ih, iw, ic = _nhwc(x, op, "input")
        n2, oh, ow, oc = _nhwc(y, op, "output")
        woc, kh, kw, fic = _nhwc(w, op, "filter")
        if n != n2 or woc != oc or fic <= 0 or ic % fic:
            raise CodegenError(f"operator {op.index} (CONV_2D): inconsistent shapes "
                               f"{x.shape} * {w.shape} -> {y.shape}")
        name, consts, common = self._conv_common(op, x, w, b, y, (ih, iw), (kh, kw), (oh, ow),
                                                 kh * kw * fic)
        params = dict(batches=n, in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc,
                      k_h=kh, k_w=kw, filter_in_c=fic, **common)
        return Node("conv", op.index, op.op, "flt_conv_params_t", "flt_conv_prepare", params,
                    "kernels/conv.h", [x], [y], consts,
                    {"weights": f"{name}_weights", "bias": f"{name}_bias" if b else "NULL"})

    def _conv_common(self, op: Operator, x, w, b, y, in_hw: tuple[int, int],
                     k_hw: tuple[int, int], out_hw: tuple[int, int], acc_terms: int):
        """What CONV_2D and DEPTHWISE_CONV_2D share: padding, the bias/accumulator range check,
        per-channel multipliers, the fused activation, and the constant arrays.
        Returns (symbol prefix, constants, common kernel parameters)."""
        o = op.options
        oc = y.shape[-1]
        pad_h = _padding(o["padding"], o["stride_h"], o["dilation_h"], in_hw[0], k_hw[0],
                         out_hw[0], op)
        pad_w = _padding(o["padding"], o["stride_w"], o["dilation_w"], in_hw[1], k_hw[1],
                         out_hw[1], op)
        worst = _check_bias(b, acc_terms, op)
        mults, shifts = quant.conv_multipliers(x.scale(), w.quant.scale, y.scale(), oc,
                                               f"operator {op.index} ({op.op})")
        _check_left_shift(worst, shifts, op)
        lo, hi = self._act(op, y)
        name = f"{self.prefix}_op{op.index}"
        consts = self._weights(op, w, b, oc)
        consts += [ConstArray(f"{name}_mult", "int32_t", np.array(mults)),
                   ConstArray(f"{name}_shift", "int32_t", np.array(shifts))]
        common = dict(stride_h=o["stride_h"], stride_w=o["stride_w"], dil_h=o["dilation_h"],
                      dil_w=o["dilation_w"], pad_h=pad_h, pad_w=pad_w,
                      input_offset=-x.zero_point(), output_offset=y.zero_point(),
                      act_min=lo, act_max=hi, multiplier=f"{name}_mult", shift=f"{name}_shift")
        return name, consts, common

    def _depthwise_conv_2d(self, op: Operator) -> Node:
        (x,), y = self._io(op)
        w = _const(self.model, op, 1, "filter", "int8")
        b = _const(self.model, op, 2, "bias", "int32")
        o = op.options
        n, ih, iw, ic = _nhwc(x, op, "input")
        n2, oh, ow, oc = _nhwc(y, op, "output")
        one, kh, kw, woc = _nhwc(w, op, "filter")
        dm = o["depth_multiplier"]
        if one != 1 or woc != oc or n != n2 or ic * dm != oc:
            if not (one == 1 and woc == oc and n == n2 and ic > 0 and oc % ic == 0):
                raise CodegenError(f"operator {op.index} (DEPTHWISE_CONV_2D): inconsistent "
                                   f"shapes {x.shape} * {w.shape} -> {y.shape}")
            dm = oc // ic  # TFLM derives the multiplier from the shapes
        name, consts, common = self._conv_common(op, x, w, b, y, (ih, iw), (kh, kw), (oh, ow),
                                                 kh * kw)
        params = dict(batches=n, in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc,
                      depth_multiplier=dm, k_h=kh, k_w=kw, **common)
        return Node("depthwise", op.index, op.op, "flt_depthwise_conv_params_t",
                    "flt_depthwise_conv_prepare", params, "kernels/depthwise_conv.h", [x], [y],
                    consts, {"weights": f"{name}_weights",
                             "bias": f"{name}_bias" if b else "NULL"})

    def _fully_connected(self, op: Operator) -> Node:
        (x,), y = self._io(op)
        w = _const(self.model, op, 1, "weights", "int8")
        b = _const(self.model, op, 2, "bias", "int32")
        if op.options.get("weights_format", 0) != 0:
            raise CodegenError(f"operator {op.index} (FULLY_CONNECTED): weights_format "
                               f"{op.options['weights_format']} is not supported; supported: "
                               "DEFAULT")
        if len(w.shape) != 2:
            raise CodegenError(f"operator {op.index} (FULLY_CONNECTED): weights must be 2-D")
        units, depth = (int(d) for d in w.shape)
        if x.size % depth or y.size != (x.size // depth) * units:
            raise CodegenError(f"operator {op.index} (FULLY_CONNECTED): inconsistent shapes "
                               f"{x.shape} * {w.shape} -> {y.shape}")
        worst = _check_bias(b, depth, op)
        per_channel = w.quant.scale.size > 1
        if per_channel and w.quant.scale.size != units:
            raise CodegenError(f"operator {op.index} (FULLY_CONNECTED): {w.quant.scale.size} "
                               f"weight scales for {units} units")
        mults, shifts = quant.conv_multipliers(
            x.scale(), w.quant.scale, y.scale(), units if per_channel else 1,
            f"operator {op.index} (FULLY_CONNECTED)")
        _check_left_shift(worst, shifts, op)
        lo, hi = self._act(op, y)
        consts = self._weights(op, w, b, units)
        name = f"{self.prefix}_op{op.index}"
        consts += [ConstArray(f"{name}_mult", "int32_t", np.array(mults)),
                   ConstArray(f"{name}_shift", "int32_t", np.array(shifts))]
        params = dict(batches=x.size // depth, depth=depth, units=units,
                      input_offset=-x.zero_point(), output_offset=y.zero_point(), act_min=lo,
                      act_max=hi, n_multipliers=len(mults), multiplier=f"{name}_mult",
                      shift=f"{name}_shift")
        return Node("fc", op.index, op.op, "flt_fully_connected_params_t",
                    "flt_fully_connected_prepare", params, "kernels/fully_connected.h", [x], [y],
                    consts, {"weights": f"{name}_weights",
                             "bias": f"{name}_bias" if b else "NULL"})

    def _pool(self, op: Operator, kind: str) -> Node:
        (x,), y = self._io(op)
        o = op.options
        n, ih, iw, c = _nhwc(x, op, "input")
        n2, oh, ow, c2 = _nhwc(y, op, "output")
        if n != n2 or c != c2:
            raise CodegenError(f"operator {op.index} ({op.op}): inconsistent shapes")
        if x.scale() != y.scale() or x.zero_point() != y.zero_point():
            raise CodegenError(f"operator {op.index} ({op.op}): input and output quantization "
                               "differ (TFLite requires them equal for int8 pooling)")
        pad_h = _padding(o["padding"], o["stride_h"], 1, ih, o["filter_h"], oh, op)
        pad_w = _padding(o["padding"], o["stride_w"], 1, iw, o["filter_w"], ow, op)
        lo, hi = self._act(op, y)
        params = dict(batches=n, in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow,
                      f_h=o["filter_h"], f_w=o["filter_w"], stride_h=o["stride_h"],
                      stride_w=o["stride_w"], pad_h=pad_h, pad_w=pad_w, act_min=lo, act_max=hi)
        return Node(kind, op.index, op.op, "flt_pool_params_t", "flt_pool_prepare", params,
                    "kernels/pooling.h", [x], [y])

    def _average_pool_2d(self, op: Operator) -> Node:
        return self._pool(op, "avg_pool")

    def _max_pool_2d(self, op: Operator) -> Node:
        return self._pool(op, "max_pool")

    def _mean(self, op: Operator) -> Node:
        (x,), y = self._io(op)
        axis_t = _const(self.model, op, 1, "axis", "int32")
        if axis_t is None:
            raise CodegenError(f"operator {op.index} (MEAN): missing axis")
        rank = len(x.shape)
        if rank > 4:
            raise CodegenError(f"operator {op.index} (MEAN): rank {rank} > 4 is not supported")
        axes = set()
        for a in axis_t.data.reshape(-1):
            a = int(a) + rank if int(a) < 0 else int(a)
            if not 0 <= a < rank:
                raise CodegenError(f"operator {op.index} (MEAN): axis {a} out of range")
            axes.add(a)
        dims = [1] * (4 - rank) + [int(d) for d in x.shape]
        reduce = [0] * (4 - rank) + [1 if k in axes else 0 for k in range(rank)]
        count = int(np.prod([d for d, r in zip(dims, reduce, strict=True) if r], dtype=np.int64))
        kept = int(np.prod([d for d, r in zip(dims, reduce, strict=True) if not r]))
        if y.size != kept:
            raise CodegenError(f"operator {op.index} (MEAN): output {y.shape} does not match")
        # TFLM evaluates every int8 MEAN with the requantizing QuantizedMeanOrSum, also when
        # input and output share scale and zero point (tests: *_same_mean variants).
        m, s = quant.mean_multiplier(x.scale(), y.scale(), count, f"operator {op.index} (MEAN)")
        if s > 0 and 256 * count * (1 << s) > INT32_MAX:
            raise CodegenError(f"operator {op.index} (MEAN): the requantization left shift {s} "
                               "could overflow int32 (output scale far below the input scale)")
        params = dict(dims=c_array(dims), reduce=c_array(reduce),
                      input_zp=x.zero_point(), output_zp=y.zero_point(), multiplier=m, shift=s)
        return Node("mean", op.index, op.op, "flt_mean_params_t", "flt_mean_prepare", params,
                    "kernels/mean.h", [x], [y])

    def _add(self, op: Operator) -> Node:
        (a, b), y = self._io(op, 2)
        for t in (a, b):
            if t.is_const:
                _require_int8(t, op, "constant input")
        if a.shape != b.shape or a.size != y.size:
            raise CodegenError(f"operator {op.index} (ADD): broadcasting ({a.shape} + "
                               f"{b.shape}) is not supported; supported: same-shape inputs")
        p = quant.add_params(a.scale(), b.scale(), y.scale(), f"operator {op.index} (ADD)")
        lo, hi = self._act(op, y)
        params = dict(size=y.size, left_shift=p["left_shift"],
                      input1_offset=-a.zero_point(), input2_offset=-b.zero_point(),
                      output_offset=y.zero_point(),
                      input1_multiplier=p["input1_multiplier"], input1_shift=p["input1_shift"],
                      input2_multiplier=p["input2_multiplier"], input2_shift=p["input2_shift"],
                      output_multiplier=p["output_multiplier"], output_shift=p["output_shift"],
                      act_min=lo, act_max=hi)
        consts = []
        for k, t in enumerate((a, b)):
            if t.is_const:
                consts.append(ConstArray(f"{self.prefix}_op{op.index}_in{k}", "int8_t", t.data))
        return Node("add", op.index, op.op, "flt_add_params_t", "flt_add_prepare", params,
                    "kernels/add.h", [a, b], [y], consts)

    def _softmax(self, op: Operator) -> Node:
        (x,), y = self._io(op)
        if y.zero_point() != -128 or abs(y.scale() - 1.0 / 256) > 1e-9:
            raise CodegenError(f"operator {op.index} (SOFTMAX): int8 output must have scale "
                               f"1/256 and zero point -128 (got {y.scale():g}, "
                               f"{y.zero_point()})")
        depth = int(x.shape[-1]) if x.shape else 1
        p = quant.softmax_params(op.options.get("beta", 1.0), x.scale(),
                                 f"operator {op.index} (SOFTMAX)")
        params = dict(outer=x.size // depth, depth=depth, **p)
        return Node("softmax", op.index, op.op, "flt_softmax_params_t", "flt_softmax_prepare",
                    params, "kernels/softmax.h", [x], [y])

    def _quantize(self, op: Operator) -> Node:
        x = self.t(op.inputs[0])
        if x.dtype != "int8":
            raise CodegenError(
                f"operator {op.index} (QUANTIZE): input is {x.dtype}; generated code supports "
                "int8 -> int8 requantization only (float tensors are not supported)"
            )
        (x,), y = self._io(op)
        m, s = quant.quantize_multiplier(quant.f32(x.scale()) / quant.f32(y.scale()),
                                         f"operator {op.index} (QUANTIZE)")
        if s > 22:
            raise CodegenError(f"operator {op.index} (QUANTIZE): rescale too large")
        params = dict(size=x.size, input_zp=x.zero_point(), output_zp=y.zero_point(),
                      multiplier=m, shift=s, scale="1.0f")
        return Node("requantize", op.index, op.op, "flt_quantize_params_t",
                    "flt_quantize_prepare", params, "kernels/quantize.h", [x], [y])
