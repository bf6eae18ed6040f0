"""FedAdam: Adam as the server optimizer, the averaged client delta as its pseudo-gradient.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan (2021), "Adaptive Federated
Optimization". m <- b1 m + (1 - b1) d; v <- b2 v + (1 - b2) d^2;
w <- w + server_lr * m / (sqrt(v) + tau). No bias correction, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.strategies.fedavg import FedAvg


@dataclass
class FedAdam(FedAvg):
    name: str = "fedadam"
    server_lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3

    def apply(self, global_params: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        m = self.state.get("m", np.zeros_like(global_params))
        v = self.state.get("v", np.zeros_like(global_params))
        m = (self.beta1 * m + (1 - self.beta1) * aggregate).astype(np.float32)
        v = (self.beta2 * v + (1 - self.beta2) * aggregate * aggregate).astype(np.float32)
        self.state["m"], self.state["v"] = m, v
        step = self.server_lr * m / (np.sqrt(v) + self.tau)
        return (global_params + step).astype(np.float32)
