"""Zoo entries. Each builds a Keras functional model whose last ``head_layers`` dense layers
are the trainable head (float32 on the device); everything before them is the frozen int8
backbone. ``head_layers = 0`` means the whole model is the head (a small MLP): then there is
no backbone and the device trains on the normalised input itself. ``train_convs = N`` moves
the last N Conv1D layers and the pooling into the trained head as well (the "float tail",
``fltiny export --train-convs N``). har-tiny trains its last conv by default (1,030
parameters; its device firmware fits every emulated board, qemu-m3's 64 kB included, because
firmware/app/flt_round.c runs the int8 backbone again at every use of a window instead of
caching features); bench/fleet_learning.py compares it with the dense head alone. The bigger
HAR models keep the head-only default: their tails do not fit the small boards.

Keras is imported only inside ``build`` so that listing the zoo stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fltiny.errors import UsageError

HEAD_PREFIX = "head_"


@dataclass(frozen=True)
class ZooModel:
    name: str
    dataset: str
    description: str
    head_layers: int  # last N dense layers; 0 = the whole model is the head
    _builder: Callable[[Any, tuple[int, ...], int], Any]
    # last N Conv1D layers (and the pooling after them) trained in float32 on the device,
    # the "float tail" (docs/architecture.md); 0 = the head is the dense layers only
    train_convs: int = 0
    # the model's size within its dataset's family line (0 tiny, 1 small, 2 gateway): `fltiny
    # run --model auto` tries a board's candidates from the largest tier down
    # (fltiny/run/families.py); parameters, int8 size, RAM and flash all grow with it
    tier: int = 0

    def build(self, input_shape: tuple[int, ...], n_outputs: int) -> Any:
        """A fresh, compiled-free Keras model for this input shape and output count."""
        from fltiny.tf import keras

        return self._builder(keras, input_shape, n_outputs)


def _conv1d_har(filters: tuple[int, ...], kernel: int, dense: int) -> Callable:
    def build(keras: Any, input_shape: tuple[int, ...], n_outputs: int) -> Any:
        inp = keras.Input(input_shape, name="window")
        x = inp
        for i, f in enumerate(filters):
            x = keras.layers.Conv1D(
                f, kernel, strides=2, padding="same", activation="relu", name=f"conv{i}"
            )(x)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        x = keras.layers.Dense(dense, activation="relu", name=f"{HEAD_PREFIX}0")(x)
        out = keras.layers.Dense(n_outputs, name=f"{HEAD_PREFIX}1")(x)
        return keras.Model(inp, out, name="har")

    return build


def _mlp(backbone: tuple[int, ...], head: tuple[int, ...]) -> Callable:
    def build(keras: Any, input_shape: tuple[int, ...], n_outputs: int) -> Any:
        inp = keras.Input(input_shape, name="features")
        x = inp
        if len(input_shape) > 1:
            x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(backbone):
            x = keras.layers.Dense(units, activation="relu", name=f"backbone{i}")(x)
        for i, units in enumerate(head):
            x = keras.layers.Dense(units, activation="relu", name=f"{HEAD_PREFIX}{i}")(x)
        out = keras.layers.Dense(n_outputs, name=f"{HEAD_PREFIX}{len(head)}")(x)
        return keras.Model(inp, out, name="mlp")

    return build


def _small_cnn(keras: Any, input_shape: tuple[int, ...], n_outputs: int) -> Any:
    inp = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv0")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw0")(x)
    x = keras.layers.MaxPooling2D(2, name="pool0")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool1")(x)
    x = keras.layers.Dense(16, activation="relu", name=f"{HEAD_PREFIX}0")(x)
    out = keras.layers.Dense(n_outputs, name=f"{HEAD_PREFIX}1")(x)
    return keras.Model(inp, out, name="digits_cnn")


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("har-tiny", "hapt", "Conv1D 8-16 + pooling; head 16-6; trains conv1 + head",
                 2, _conv1d_har((8, 16), 5, 16), train_convs=1),
        ZooModel("har-small", "hapt", "Conv1D 16-32-32 + pooling; head 32-6 (--train-convs 1: "
                 "conv2 too)", 2, _conv1d_har((16, 32, 32), 5, 32), tier=1),
        ZooModel("har-gateway", "hapt",
                 "Conv1D 32-64-64-64 + pooling; head 64-6 (--train-convs 1: conv3 too)",
                 2, _conv1d_har((32, 64, 64, 64), 7, 64), tier=2),
        ZooModel("thermo-tiny", "thermostat", "MLP 16-8-1, all of it the head",
                 0, _mlp((), (16, 8))),
        ZooModel("thermo-small", "thermostat", "MLP backbone 32-32; head 16-1",
                 2, _mlp((32, 32), (16,)), tier=1),
        ZooModel("thermo-gateway", "thermostat", "MLP backbone 64-64-64; head 32-1",
                 2, _mlp((64, 64, 64), (32,)), tier=2),
        ZooModel("digits-tiny", "digits", "Conv2D + DepthwiseConv2D + pooling; head 16-10",
                 2, _small_cnn),
    )
}


def families(dataset: str) -> list[ZooModel]:
    """The zoo models of ``dataset``, largest tier first (``fltiny run --model auto``'s
    candidates)."""
    return sorted((m for m in ZOO.values() if m.dataset == dataset), key=lambda m: -m.tier)


def get_model(name: str) -> ZooModel:
    try:
        return ZOO[name]
    except KeyError:
        raise UsageError(
            f"unknown zoo model '{name}'; choose one of: {', '.join(sorted(ZOO))}"
        ) from None
