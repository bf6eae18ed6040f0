"""Turn a full-int8 .tflite into C: lower the ops, resolve storage, plan the arena, render.

Storage of each activation tensor: the caller's `input` / `output` pointer for the graph's
input and output (and tensors that are reshapes of them), a constant array for constant
tensors, otherwise an offset in one static arena planned from tensor lifetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from fltiny.errors import CodegenError

from . import planner
from .nodes import ALIAS_OPS, SUPPORTED_OPS, ConstArray, Lowering, Node, _require_int8
from .tflite_model import Operator, Tensor, TfliteModel, read_tflite

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@dataclass
class CodegenResult:
    """What `generate` wrote and what the generated model needs."""

    header: Path
    source: Path
    arena_bytes: int
    ops: list[str]  # one line per generated kernel call: "CONV_2D [1, 8, 8, 3] -> [...]"
    const_bytes: int  # weights, biases and multipliers in flash
    input_size: int
    output_size: int
    files: list[Path] = field(default_factory=list)


@dataclass
class CopyNode:
    """A byte copy (a reshape between the graph input and the graph output)."""

    kind: str
    index: int
    op: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    args: dict = field(default_factory=dict)
    consts: list = field(default_factory=list)
    params_type: str = ""
    header: str = ""

    def summary(self) -> str:
        return f"{self.op} (copy) {list(self.inputs[0].shape)} -> {list(self.outputs[0].shape)}"


class _Groups:
    """Union-find of tensors that share storage through reshape-like ops."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", prefix):
        raise CodegenError(f"prefix '{prefix}' is not a valid C identifier (letters, digits, _)")
    return prefix


def build(model: TfliteModel, prefix: str) -> dict:
    """Everything the templates need (the model of the generated C)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise CodegenError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                           "outputs; code generation supports exactly one of each")
    t_in, t_out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    for t, role in ((t_in, "model input"), (t_out, "model output")):
        if t.dtype != "int8" or t.dynamic:
            raise CodegenError(f"{role} '{t.name}' is {t.dtype}{' (dynamic shape)' if t.dynamic else ''}; "
                               "generated code needs a static int8 input and output "
                               "(convert with inference_input_type/output_type int8)")
    if not model.operators:
        raise CodegenError("the model has no operators")
    for t in model.tensors:
        if not t.is_const and any(d <= 0 for d in t.shape):
            raise CodegenError(f"tensor '{t.name}' has shape {list(t.shape)}; generated code "
                               "needs static positive dimensions")
    # Fail on the first unsupported op before any other analysis, naming all of them.
    bad = [op for op in model.operators if op.op not in SUPPORTED_OPS]
    if bad:
        names = ", ".join(sorted({op.op for op in bad}))
        raise CodegenError(f"unsupported op(s) {names} (operator {bad[0].index}); "
                           f"supported ops: {', '.join(SUPPORTED_OPS)}")

    lowering = Lowering(model, prefix)
    groups = _Groups(len(model.tensors))
    steps: list[Node | CopyNode | None] = []
    for op in model.operators:
        if op.op in ALIAS_OPS:
            steps.append(_alias(model, op, groups))
        else:
            steps.append(lowering.lower(op))

    # Storage classes per alias group.
    gin, gout = groups.find(t_in.index), groups.find(t_out.index)
    copy_io = gin == gout
    storage: dict[int, str] = {}
    if copy_io:
        # A pure reshape model: copy input to output.
        op = next(o for o in model.operators if o.op in ALIAS_OPS)
        steps = [CopyNode("copy", op.index, op.op, [t_in], [t_out])]
    storage[gin] = "input"
    if not copy_io:
        storage[gout] = "output"

    # Lifetimes of the remaining (arena) groups over the kernel calls.
    live: dict[int, list[int]] = {}
    nodes = [s for s in steps if s is not None]
    for k, node in enumerate(nodes):
        for t in [*node.inputs, *node.outputs]:
            if t.is_const:
                continue
            g = groups.find(t.index)
            if g in storage:
                continue
            span = live.setdefault(g, [k, k])
            span[0], span[1] = min(span[0], k), max(span[1], k)
    sizes: dict[int, int] = {}
    for t in model.tensors:
        g = groups.find(t.index)
        if g in live:
            sizes[g] = max(sizes.get(g, 0), t.nbytes)
    requests = [planner.Request(g, sizes[g], a, b) for g, (a, b) in live.items()]
    offsets, arena_bytes = planner.plan_arena(requests)

    def ptr(t: Tensor, node) -> str:
        if t.is_const:
            for c in node.consts:
                if c.values is t.data:
                    return c.name
            raise CodegenError(f"operator {node.index} ({node.op}): constant tensor '{t.name}' "
                               "where an activation is expected")
        g = groups.find(t.index)
        if g in storage:
            return storage[g]
        return f"&{prefix}_arena[{offsets[g]}]"

    for node in nodes:
        if isinstance(node, CopyNode):
            node.args.update({"in": ["input"], "out": ["output"]})
            continue
        node.args["in"] = [ptr(t, node) for t in node.inputs]
        node.args["out"] = [ptr(t, node) for t in node.outputs]
    consts: list[ConstArray] = [c for node in nodes for c in node.consts]
    headers = sorted({n.header for n in nodes if n.header})
    return {
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "nodes": nodes,
        "consts": consts,
        "const_bytes": sum(c.nbytes for c in consts),
        "headers": headers,
        "arena_bytes": arena_bytes,
        "input": t_in,
        "output": t_out,
        "in_scale": _c_float(t_in.scale()),
        "out_scale": _c_float(t_out.scale()),
        "description": model.description,
        "n_model_ops": len(model.operators),
    }


def _alias(model: TfliteModel, op: Operator, groups: _Groups) -> None:
    if len(op.outputs) != 1 or not op.inputs:
        raise CodegenError(f"operator {op.index} ({op.op}): unexpected inputs/outputs")
    x, y = model.tensors[op.inputs[0]], model.tensors[op.outputs[0]]
    if y.dynamic or x.dynamic:
        raise CodegenError(f"operator {op.index} ({op.op}): dynamic shape; re-wrap the model on "
                           "a fixed batch-1 input before conversion")
    if x.size != y.size or x.dtype != y.dtype:
        raise CodegenError(f"operator {op.index} ({op.op}): {x.shape} -> {y.shape} is not a "
                           "pure reshape")
    if x.is_const:
        raise CodegenError(f"operator {op.index} ({op.op}) of a constant tensor is not supported")
    _require_int8(x, op, "input")
    groups.union(y.index, x.index)
    return None


def _c_float(v: float) -> str:
    s = repr(float(np.float32(v)))
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def generate(tflite: bytes | Path | str, out_dir: Path | str, prefix: str = "backbone"
             ) -> CodegenResult:
    """Generate `<prefix>.h` and `<prefix>.c` in out_dir from a full-int8 .tflite model."""
    prefix = _check_prefix(prefix)
    if isinstance(tflite, (str, Path)):
        path = Path(tflite)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CodegenError(f"cannot read {path}: {e.strerror}") from e
    else:
        data = bytes(tflite)
    model = read_tflite(data)
    try:
        ctx = build(model, prefix)
    except (KeyError, IndexError, ZeroDivisionError, ValueError, TypeError, OverflowError) as e:
        # A structurally valid flatbuffer with inconsistent contents (e.g. a corrupted
        # shape): report it as the model's problem, with the underlying reason.
        raise CodegenError(f"malformed model ({type(e).__name__}: {e}); re-export the "
                           ".tflite from the Keras model") from e
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    header = out / f"{prefix}.h"
    source = out / f"{prefix}.c"
    header.write_text(env.get_template("model.h.j2").render(**ctx))
    source.write_text(env.get_template("model.c.j2").render(**ctx))
    return CodegenResult(
        header=header,
        source=source,
        arena_bytes=ctx["arena_bytes"],
        ops=[n.summary() for n in ctx["nodes"]],
        const_bytes=ctx["const_bytes"],
        input_size=ctx["input"].size,
        output_size=ctx["output"].size,
        files=[header, source],
    )
