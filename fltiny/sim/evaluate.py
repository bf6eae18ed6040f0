"""Held-out evaluation of a global head: the int8 backbone in the generated C (computed once),
then the float32 head forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.data import load_dataset
from fltiny.devices.data import quantize_windows
from fltiny.devices.replay import HostRound
from fltiny.export.quant import dequantize
from fltiny.export.split import Head


@dataclass
class HoldoutEvaluator:
    """Accuracy and cross-entropy (classification) or MAE (regression) on held-out groups."""

    head: Head
    features: np.ndarray  # float32 [n, n_features], dequantized backbone outputs
    y: np.ndarray
    task: str

    @classmethod
    def for_bundle(cls, host: HostRound, dataset: str) -> HoldoutEvaluator:
        ds = load_dataset(dataset)
        hold = ds.holdout()
        q = quantize_windows(hold.x, host.manifest)
        feats = dequantize(host.backbone(q), host.feature_scale, host.feature_zero_point)
        return cls(host.head, feats, hold.y, ds.task)

    def __call__(self, params: np.ndarray) -> dict[str, float]:
        out = Head(self.head.layers, params.astype(np.float32)).forward(self.features)
        if self.task == "classification":
            z = out - out.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            loss = float(-logp[np.arange(len(self.y)), self.y].mean())
            return {"accuracy": float(np.mean(out.argmax(axis=1) == self.y)), "loss": loss}
        err = out.reshape(-1) - self.y.reshape(-1)
        return {"mae": float(np.mean(np.abs(err))), "loss": float(np.mean(err**2))}
