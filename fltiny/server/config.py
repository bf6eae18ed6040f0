"""Round and training settings (plain dataclasses, no heavy imports: the CLI reads the
defaults at start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainParams:
    """What a TRAIN message tells each device (mu comes from the strategy).

    Defaults tuned on HAPT with har-tiny's 374-parameter head (15 fleet users, one per
    device): SGD lr 0.002 with momentum 0.9 for 2 local epochs climbs steadily, where
    lr >= 0.01 oscillates (docs/benchmarks.md).
    """

    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 0.002
    momentum: float = 0.9
    clip: float = 5.0
    topk_fraction: float = 0.05  # har-tiny: 19 of 374 parameters, a 51-byte payload (29x)
    error_feedback: bool = True
    seed: int = 0


@dataclass(frozen=True)
class RoundConfig:
    rounds: int = 10
    fraction: float = 1.0  # share of available devices asked each round
    min_fit: int = 1  # quorum: fewer accepted updates leave the global model unchanged
    deadline_s: float = 120.0
    max_norm: float = float("inf")
    anomaly_threshold: float = float("inf")
    seed: int = 0
    train: TrainParams = field(default_factory=TrainParams)
