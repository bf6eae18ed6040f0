"""Parameters and int8 size of every zoo variant (``fltiny models --measure``).

Sizes come from a real int8 conversion of an untrained model with representative data drawn
from the model's dataset. A trained model's flatbuffer can be a few hundred bytes larger (the
converter shares identical constant buffers, such as all-zero biases, in an untrained model);
parameter counts do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fltiny.data import load_dataset
from fltiny.data.base import Normalization
from fltiny.models.zoo import ZOO


@dataclass(frozen=True)
class ZooSize:
    name: str
    params: int
    head_params: int
    backbone_bytes: int
    head_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.backbone_bytes + self.head_bytes


def measure_zoo(progress: Callable[[str], None] = lambda _m: None) -> list[ZooSize]:
    from fltiny.export.convert import to_int8_tflite
    from fltiny.export.split import split_model

    rows = []
    for zoo in ZOO.values():
        progress(f"converting {zoo.name}")
        ds = load_dataset(zoo.dataset)
        model = zoo.build(ds.input_shape, ds.n_outputs)
        split = split_model(model, zoo.head_layers, zoo.train_convs)
        rep = Normalization.fit(ds.factory().x).apply(ds.factory().x[:100])
        backbone = to_int8_tflite(split.backbone, rep) if split.backbone is not None else b""
        rows.append(ZooSize(zoo.name, int(model.count_params()), split.head.n_params,
                            len(backbone), 4 * split.head.n_params))
    return rows
