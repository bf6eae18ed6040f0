"""Split a Keras model into a frozen backbone and a trainable head of dense layers.

The head is the last ``head_layers`` Dense layers, which must form a plain chain ending at
the model's output; ``head_layers = 0`` takes every layer after the input as the head, which
must then be Dense layers only (Flatten allowed first). The head's parameters are flattened
in the device's order: for each layer, ``W`` row-major ``[out][in]`` then ``b[out]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fltiny.errors import UsageError

HEAD_ACTIVATIONS = {"linear": "none", "relu": "relu"}


@dataclass(frozen=True)
class HeadLayer:
    n_in: int
    n_out: int
    activation: str  # "none" | "relu"


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
            w = self.params[offset : offset + layer.n_in * layer.n_out]
            w = w.reshape(layer.n_out, layer.n_in)
            offset += w.size
            b = self.params[offset : offset + layer.n_out]
            offset += layer.n_out
            x = x @ w.T + b
            if layer.activation == "relu":
                x = np.maximum(x, 0.0)
        return x.astype(np.float32)


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


def split_model(model: Any, head_layers: int) -> SplitModel:
    from fltiny.tf import keras

    layers = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    if not layers:
        raise UsageError("the model has no layers")
    if head_layers < 0:
        raise UsageError(f"--head-layers must be 0 or more, got {head_layers}")
    if head_layers == 0:
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

    head_layers_spec = []
    chunks = []
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
    feature = head_keras[0].input
    backbone = keras.Model(model.inputs[0], feature, name="backbone")
    return SplitModel(backbone, head, backbone.layers[-1].name)
