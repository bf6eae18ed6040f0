"""The dataset and scenario types shared by every loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fltiny.errors import DataError

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Scenario:
    """Which groups play which part: factory (initial training), fleet devices, held out."""

    factory: tuple[int, ...]
    fleet: tuple[int, ...]
    holdout: tuple[int, ...]


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """Samples ``x`` (float32, first axis is the sample), targets ``y`` and group ids.

    ``y`` holds int64 class indices for classification and float32 targets for regression.
    ``groups`` names the user or home each sample came from (one group = one device).
    """

    name: str
    task: Task
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    scenario: Scenario
    class_names: tuple[str, ...] = ()
    description: str = ""
    channel_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.x) == 0:
            raise DataError(f"dataset '{self.name}' is empty")
        if not (len(self.x) == len(self.y) == len(self.groups)):
            raise DataError(
                f"dataset '{self.name}': x, y and groups differ in length "
                f"({len(self.x)}, {len(self.y)}, {len(self.groups)})"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.task == "classification" else 1

    def select(self, groups: tuple[int, ...] | list[int]) -> Split:
        """The samples of the given groups, in dataset order."""
        mask = np.isin(self.groups, np.asarray(groups))
        if not mask.any():
            raise DataError(f"dataset '{self.name}' has no samples for groups {list(groups)}")
        return Split(self.x[mask], self.y[mask], self.groups[mask])

    def factory(self) -> Split:
        return self.select(self.scenario.factory)

    def fleet(self) -> Split:
        return self.select(self.scenario.fleet)

    def holdout(self) -> Split:
        return self.select(self.scenario.holdout)


@dataclass(frozen=True)
class Normalization:
    """Per-channel standardisation ``(x - mean) / std`` over the last axis.

    The statistics come from the factory groups only and travel with the model in its
    manifest, so devices and host normalise raw sensor values identically.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> Normalization:
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        std = flat.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)
        return cls(tuple(float(v) for v in flat.mean(axis=0)), tuple(float(v) for v in std))

    def apply(self, x: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if x.shape[-1] != mean.shape[0]:
            raise DataError(
                f"normalisation expects {mean.shape[0]} channels in the last axis, got {x.shape[-1]}"
            )
        return ((x.astype(np.float32) - mean) / std).astype(np.float32)
