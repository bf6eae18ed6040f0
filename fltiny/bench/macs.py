"""Multiply-accumulate counts, computed from the model (not measured).

- `backbone_macs(tflite)`: the int8 MACs of one backbone inference, per op:
  CONV_2D  Ho*Wo*Cout * Kh*Kw*Cin      (filter [Cout, Kh, Kw, Cin], output [1, Ho, Wo, Cout])
  DEPTHWISE_CONV_2D  Ho*Wo*Cout * Kh*Kw  (filter [1, Kh, Kw, Cout])
  FULLY_CONNECTED  rows * out * in     (weights [out, in])
  Other ops (MEAN, pooling, ADD, SOFTMAX, RESHAPE) are counted as 0 MACs; their cost still
  shows in the measured instructions, so instructions per MAC is an upper bound for the
  MAC kernels alone. Padding is not subtracted (SAME-padded taps count as MACs).
- `head_train_macs(layers)`: float32 MACs of one training sample of the head (flt_dense.h):
  forward sum(in*out), weight gradient sum(in*out), input gradient for every layer but the
  first (layer 0's input is the frozen backbone's output: no gradient needed). A conv1d
  layer counts the taps that read its input (out_len*kernel minus the padding taps) times
  out_ch*in_ch. These are the MACs of the dense maths; the C skips the terms whose dL/dz is
  0 (a ReLU that is off), so it may execute fewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OpMacs:
    op: str
    macs: int


def backbone_macs(tflite: bytes) -> list[OpMacs]:
    from fltiny.codegen.tflite_model import read_tflite

    model = read_tflite(tflite)
    out = []
    for op in model.operators:
        t_out = model.tensors[op.outputs[0]]
        macs = 0
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = model.tensors[op.inputs[1]].shape
            spatial = int(np.prod(t_out.shape[1:3]))
            if op.op == "CONV_2D":
                macs = spatial * w[0] * w[1] * w[2] * w[3]
            else:
                macs = spatial * w[3] * w[1] * w[2]
        elif op.op == "FULLY_CONNECTED":
            w = model.tensors[op.inputs[1]].shape
            rows = t_out.size // w[0]
            macs = rows * w[0] * w[1]
        out.append(OpMacs(op.op, int(macs)))
    return out


def conv1d_valid_taps(lyr) -> int:
    """Taps of a conv1d layer that read the input, summed over its output positions: the C
    skips the taps that fall on the zero padding (flt_conv1d.h), so they are no MACs."""
    in_len, out_len = lyr.n_in // lyr.in_ch, lyr.n_out // lyr.out_ch
    taps = 0
    for t in range(out_len):
        first = t * lyr.stride - lyr.pad_left
        taps += sum(1 for k in range(lyr.kernel) if 0 <= first + k < in_len)
    return taps


def layer_macs(lyr) -> int:
    """Multiply-adds of one head layer's forward pass: dense in x out; conv1d valid taps x
    out_ch x in_ch (the padding taps are skipped, not multiplied); gap1d none (additions)."""
    kind = getattr(lyr, "kind", "dense")
    if kind == "conv1d":
        return conv1d_valid_taps(lyr) * lyr.out_ch * lyr.in_ch
    if kind == "gap1d":
        return 0
    return lyr.n_in * lyr.n_out


def head_train_macs(layers) -> dict[str, int]:
    """layers: HeadLayer-like objects (fltiny.export.bundle.read_bundle). Backward: the weight
    gradients (as many MACs as the forward pass) and the input gradient of every layer but the
    first (its input is the frozen backbone's output)."""
    fwd = sum(layer_macs(lyr) for lyr in layers)
    grad_w = fwd
    grad_x = sum(layer_macs(lyr) for lyr in layers[1:])
    return {"forward": fwd, "backward": grad_w + grad_x, "total": fwd + grad_w + grad_x}
