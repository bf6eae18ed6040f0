"""FedAvgM: FedAvg with server momentum.

Hsu, Qi, Brown (2019), "Measuring the Effects of Non-Identical Data Distribution for Federated
Visual Classification". v <- beta * v + avg_delta; w <- w + server_lr * v.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fltiny.strategies.fedavg import FedAvg


@dataclass
class FedAvgM(FedAvg):
    name: str = "fedavgm"
    server_momentum: float = 0.9

    def apply(self, global_params: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        v = self.state.get("velocity", np.zeros_like(global_params))
        v = (np.float32(self.server_momentum) * v + aggregate).astype(np.float32)
        self.state["velocity"] = v
        return (global_params + np.float32(self.server_lr) * v).astype(np.float32)
