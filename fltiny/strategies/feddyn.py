"""FedDyn: federated learning with dynamic regularization (drift control without extra bytes).

Acar, Zhao, Matas, Mattina, Whatmough, Saligrama (2021), "Federated Learning Based on Dynamic
Regularization", ICLR. Device k minimises L_k(w) - <g_k, w> + alpha/2 |w - w_global|^2 from the
global model and afterwards sets g_k <- g_k - alpha (w_k - w_global): its state g_k is the
gradient of its loss at its last local model, so the devices' fixed points agree with the
global objective's although their data differ (client drift). The device side is
firmware/app/flt_round.c (TRAIN flag DRIFT, alpha = prox_mu); it sends only its model delta.

The server keeps h and computes, from the (example-weighted) mean delta d of the round:
    h <- h - alpha * d
    w <- w + d - h / alpha
(the paper's h uses (1/m) * sum over the participants of the m devices; with every device
taking part, as in fltiny's default rounds, that is the mean delta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.strategies.fedavg import FedAvg


@dataclass
class FedDyn(FedAvg):
    name: str = "feddyn"
    proximal_mu: float = 0.01  # alpha
    drift: bool = True

    def apply(self, global_params: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        alpha = np.float32(self.proximal_mu)
        h = self.state.get("h", np.zeros_like(global_params)).astype(np.float32)
        h = (h - alpha * aggregate).astype(np.float32)
        self.state["h"] = h
        return (global_params + aggregate - h / alpha).astype(np.float32)
