"""FedProx: FedAvg aggregation; devices add the proximal term mu/2 * ||w - w_global||^2.

Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith (2020), "Federated Optimization in Heterogeneous
Networks". The server's only part is to send ``mu`` in every TRAIN message.
"""

from __future__ import annotations

from dataclasses import dataclass

from fltiny.strategies.fedavg import FedAvg


@dataclass
class FedProx(FedAvg):
    name: str = "fedprox"
    proximal_mu: float = 0.01
