"""Dataset names and their loaders."""

from __future__ import annotations

from collections.abc import Callable

from fltiny.data import digits, hapt, thermostat
from fltiny.data.base import Dataset
from fltiny.errors import UsageError

DATASETS: dict[str, Callable[[], Dataset]] = {
    "hapt": hapt.load,
    "thermostat": thermostat.load,
    "digits": digits.load,
}


def load_dataset(name: str) -> Dataset:
    try:
        loader = DATASETS[name]
    except KeyError:
        raise UsageError(
            f"unknown dataset '{name}'; choose one of: {', '.join(sorted(DATASETS))}"
        ) from None
    return loader()
