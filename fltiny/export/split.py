"""Split a Keras model into a frozen backbone and a trainable float32 head.

The head is the last ``head_layers`` Dense layers, which must form a plain chain ending at
the model's output; ``head_layers = 0`` takes every layer after the input as the head, which
must then be Dense layers only (Flatten allowed first). ``train_convs = N`` > 0 also moves the
last N Conv1D layers and the pooling after them into the head (the "float tail", trained in
float32 on the device); the backbone then ends at the first trained conv's input. The head's
parameters are flattened in the device's order (firmware/runtime/train/flt_head.h): for each
dense layer ``W`` row-major ``[out][in]`` then ``b[out]``; for each conv ``W[out][kernel][in]``
then ``b[out]``; pooling has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fltiny.errors import UsageError

HEAD_ACTIVATIONS = {"linear": "none", "relu": "relu"}
LAYER_KINDS = {"dense": 0, "conv1d": 1, "gap1d": 2}  # flt_layer_t.kind (FLT_LAYER_*)
GEOMETRY = ("in_ch", "out_ch", "kernel", "stride", "pad_left")


@dataclass(frozen=True)
class HeadLayer:
    """One layer of the device head (flt_layer_t in firmware/runtime/train/flt_head.h).

    ``kind`` "dense" (the default, geometry all 0), "conv1d" (channels-last Conv1D: n_in =
    in_len * in_ch, n_out = out_len * out_ch, kernel, stride and the zeros before the input,
    pad_left) or "gap1d" (mean over time, [len][n_out] -> [n_out], no parameters)."""

    n_in: int
    n_out: int
    activation: str  # "none" | "relu"
    kind: str = "dense"
    in_ch: int = 0
    out_ch: int = 0
    kernel: int = 0
    stride: int = 0
    pad_left: int = 0

    @property
    def n_params(self) -> int:
        if self.kind == "conv1d":
            return self.out_ch * self.kernel * self.in_ch + self.out_ch
        if self.kind == "gap1d":
            return 0
        return self.n_in * self.n_out + self.n_out

    def c_fields(self) -> tuple[int, ...]:
        """The flt_layer_t fields in declaration order (in, out, act, kind, geometry...)."""
        return (self.n_in, self.n_out, 1 if self.activation == "relu" else 0,
                LAYER_KINDS[self.kind], *(getattr(self, g) for g in GEOMETRY))

    def to_manifest(self) -> dict[str, Any]:
        """Manifest form: a dense layer as before the kinds existed (n_in, n_out,
        activation), other kinds with their kind and geometry."""
        d: dict[str, Any] = {"n_in": self.n_in, "n_out": self.n_out,
                             "activation": self.activation}
        if self.kind != "dense":
            d["kind"] = self.kind
            d.update({g: getattr(self, g) for g in GEOMETRY})
        return d

    def describe(self) -> str:
        if self.kind == "conv1d":
            return (f"conv1d {self.n_in // self.in_ch}x{self.in_ch}->"
                    f"{self.n_out // self.out_ch}x{self.out_ch} k{self.kernel} s{self.stride}")
        if self.kind == "gap1d":
            return f"pool {self.n_out}"
        return str(self.n_out)


def _conv1d_forward(layer: HeadLayer, w: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[N, in_len*in_ch] -> [N, out_len*out_ch], zero padding, channels-last, float32."""
    in_len = layer.n_in // layer.in_ch
    out_len = layer.n_out // layer.out_ch
    span = (out_len - 1) * layer.stride + layer.kernel
    pad_right = max(span - in_len - layer.pad_left, 0)
    xp = np.pad(x.reshape(len(x), in_len, layer.in_ch),
                ((0, 0), (layer.pad_left, pad_right), (0, 0)))
    wf = w.reshape(layer.out_ch, layer.kernel * layer.in_ch)  # [out][k][in] flattened
    y = np.empty((len(x), out_len, layer.out_ch), np.float32)
    for t in range(out_len):
        win = xp[:, t * layer.stride : t * layer.stride + layer.kernel].reshape(len(x), -1)
        y[:, t] = win @ wf.T + b
    return y.reshape(len(x), -1)


@dataclass(frozen=True)
class Head:
    layers: tuple[HeadLayer, ...]
    params: np.ndarray  # float32, flat, device order

    @property
    def n_params(self) -> int:
        return int(self.params.size)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def forward(self, features: np.ndarray) -> np.ndarray:
        """Float32 forward pass of the head (the reference the device's C code follows)."""
        x = features.astype(np.float32).reshape(len(features), -1)
        offset = 0
        for layer in self.layers:
            n_bias = layer.out_ch if layer.kind == "conv1d" else layer.n_out
            n_w = layer.n_params - n_bias if layer.kind != "gap1d" else 0
            w = self.params[offset : offset + n_w]
            b = self.params[offset + n_w : offset + layer.n_params]
            offset += layer.n_params
            if layer.kind == "conv1d":
                x = _conv1d_forward(layer, w, b, x)
            elif layer.kind == "gap1d":
                x = x.reshape(len(x), -1, layer.n_out).mean(axis=1, dtype=np.float32)
            else:
                x = x @ w.reshape(layer.n_out, layer.n_in).T + b
            if layer.activation == "relu":
                x = np.maximum(x, 0.0)
        return x.astype(np.float32)

    @property
    def n_acts(self) -> int:
        """Floats of the forward activations (flt_train_sizes_t.n_acts)."""
        return sum(lyr.n_out for lyr in self.layers)

    @property
    def max_width(self) -> int:
        """flt_train_sizes_t.max_width: the largest out_size (flt_head.h "Sizes")."""
        return max(lyr.n_out for lyr in self.layers)

    @property
    def has_geometry(self) -> bool:
        """True when some layer is not dense (the header then carries geometry tables)."""
        return any(lyr.kind != "dense" for lyr in self.layers)


@dataclass(frozen=True)
class SplitModel:
    backbone: Any | None  # keras.Model, or None when the whole model is the head
    head: Head
    feature_layer: str | None  # name of the backbone's last layer


def _dense_activation(layer: Any, last: bool) -> str:
    act = layer.get_config().get("activation", "linear")
    if isinstance(act, dict):
        act = act.get("config", {}).get("name", str(act))
    if act == "softmax" and last:
        return "none"  # trained as logits with softmax cross-entropy
    if act not in HEAD_ACTIVATIONS:
        raise UsageError(
            f"head layer '{layer.name}' uses activation '{act}'; the device head supports "
            f"{', '.join(sorted(HEAD_ACTIVATIONS))} (softmax only on the last layer)"
        )
    return HEAD_ACTIVATIONS[act]


def _same_pad_left(in_len: int, out_len: int, kernel: int, stride: int) -> int:
    """TensorFlow's 'SAME' split: the odd zero goes to the right."""
    return max((out_len - 1) * stride + kernel - in_len, 0) // 2


def _conv1d_layer(lyr: Any) -> tuple[HeadLayer, list[np.ndarray]]:
    """A Keras Conv1D as a head layer, and its params in the device order."""
    cfg = lyr.get_config()
    in_len, in_ch = (int(d) for d in lyr.input.shape[1:])
    out_len, out_ch = (int(d) for d in lyr.output.shape[1:])
    kernel = int(cfg["kernel_size"][0])
    stride = int(cfg["strides"][0])
    if tuple(cfg.get("dilation_rate", (1,))) != (1,) or int(cfg.get("groups", 1)) != 1 \
            or cfg.get("data_format", "channels_last") != "channels_last":
        raise UsageError(f"float tail layer '{lyr.name}': only channels-last Conv1D without "
                         "dilation or groups can train on the device (lower --train-convs)")
    padding = cfg.get("padding", "valid")
    if padding == "same":
        pad_left = _same_pad_left(in_len, out_len, kernel, stride)
    elif padding == "valid":
        pad_left = 0
    else:
        raise UsageError(f"float tail layer '{lyr.name}' uses padding '{padding}'; the device "
                         "conv supports 'same' and 'valid' (lower --train-convs)")
    weights = [np.asarray(w, dtype=np.float32) for w in lyr.get_weights()]
    kern = weights[0]  # Keras [kernel][in][out] -> device [out][kernel][in]
    bias = weights[1] if len(weights) > 1 else np.zeros(out_ch, np.float32)
    layer = HeadLayer(in_len * in_ch, out_len * out_ch, _dense_activation(lyr, False),
                      "conv1d", in_ch, out_ch, kernel, stride, pad_left)
    return layer, [kern.transpose(2, 0, 1).reshape(-1), bias.reshape(-1)]


def _float_tail(layers: list[Any], first_dense: Any, train_convs: int, keras: Any) -> list[Any]:
    """The Keras layers from the ``train_convs``-th last Conv1D up to the head's first Dense
    layer: a plain chain of Conv1D and GlobalAveragePooling1D layers."""
    convs = [lyr for lyr in layers if isinstance(lyr, keras.layers.Conv1D)]
    if len(convs) < train_convs:
        raise UsageError(f"the model has {len(convs)} Conv1D layer(s), fewer than "
                         f"--train-convs {train_convs}; give --train-convs 0 to {len(convs)}")
    start = layers.index(convs[-train_convs])
    stop = layers.index(first_dense)
    tail = layers[start:stop]
    for lyr in tail:
        if not isinstance(lyr, (keras.layers.Conv1D, keras.layers.GlobalAveragePooling1D)):
            raise UsageError(f"layer '{lyr.name}' ({type(lyr).__name__}) sits between the "
                             "trained convs and the head; the float tail supports Conv1D and "
                             "GlobalAveragePooling1D only (lower --train-convs)")
        if isinstance(lyr, keras.layers.GlobalAveragePooling1D) and (
                lyr.get_config().get("keepdims") or
                lyr.get_config().get("data_format", "channels_last") != "channels_last"):
            raise UsageError(f"pooling layer '{lyr.name}' must be channels-last without keepdims")
    for prev, nxt in zip(tail, [*tail[1:], first_dense], strict=True):
        if nxt.input is not prev.output:
            raise UsageError(f"float tail layers '{prev.name}' -> '{nxt.name}' are not a plain "
                             "chain")
    return tail


def split_model(model: Any, head_layers: int, train_convs: int = 0) -> SplitModel:
    """Cut ``model`` into an int8 backbone and a float32 head: the last ``head_layers`` Dense
    layers, plus (``train_convs`` > 0, the "float tail") the last ``train_convs`` Conv1D
    layers and the pooling between them and the head. The backbone then ends at the input
    of the first trained conv, and the head's params are in the device order of flt_head.h
    (conv kernels [out][kernel][in])."""
    from fltiny.tf import keras

    layers = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    if not layers:
        raise UsageError("the model has no layers")
    if head_layers < 0:
        raise UsageError(f"--head-layers must be 0 or more, got {head_layers}")
    if train_convs < 0:
        raise UsageError(f"--train-convs must be 0 or more, got {train_convs}")
    if head_layers == 0:
        if train_convs:
            raise UsageError("--train-convs needs a backbone: with --head-layers 0 the whole "
                             "model is the head")
        head_keras = [lyr for lyr in layers if not isinstance(lyr, keras.layers.Flatten)]
        prefix = layers[: len(layers) - len(head_keras)]
        if any(not isinstance(lyr, keras.layers.Flatten) for lyr in prefix):
            raise UsageError("with --head-layers 0 the model must be Dense layers only")
    else:
        if head_layers > len(layers):
            raise UsageError(f"the model has {len(layers)} layers, fewer than --head-layers {head_layers}")
        head_keras = layers[-head_layers:]
    for lyr in head_keras:
        if not isinstance(lyr, keras.layers.Dense):
            raise UsageError(
                f"head layer '{lyr.name}' is a {type(lyr).__name__}; the head must be Dense layers "
                "(lower --head-layers)"
            )
    for prev, nxt in zip(head_keras, head_keras[1:], strict=False):
        if nxt.input is not prev.output:
            raise UsageError(f"head layers '{prev.name}' -> '{nxt.name}' are not a plain chain")
    if head_keras[-1].output is not model.outputs[0] or len(model.outputs) != 1:
        raise UsageError("the head's last Dense layer must be the model's only output")

    tail = _float_tail(layers, head_keras[0], train_convs, keras) if train_convs else []
    head_layers_spec = []
    chunks = []
    for lyr in tail:
        if isinstance(lyr, keras.layers.Conv1D):
            spec, params = _conv1d_layer(lyr)
            head_layers_spec.append(spec)
            chunks += params
        else:
            length, ch = (int(d) for d in lyr.input.shape[1:])
            head_layers_spec.append(HeadLayer(length * ch, ch, "none", "gap1d"))
    for i, lyr in enumerate(head_keras):
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in lyr.get_weights())
        n_in, n_out = kernel.shape
        head_layers_spec.append(
            HeadLayer(int(n_in), int(n_out), _dense_activation(lyr, i == len(head_keras) - 1))
        )
        chunks += [kernel.T.reshape(-1), bias.reshape(-1)]
    head = Head(tuple(head_layers_spec), np.concatenate(chunks).astype(np.float32))

    if head_layers == 0:
        return SplitModel(None, head, None)
    feature = (tail[0] if tail else head_keras[0]).input
    backbone = keras.Model(model.inputs[0], feature, name="backbone")
    return SplitModel(backbone, head, backbone.layers[-1].name)
