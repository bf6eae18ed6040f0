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
# datasets whose generator makes as many fleet groups (homes) as there are devices
GROWING: dict[str, Callable[[int], Dataset]] = {
    "thermostat": lambda n: thermostat.load(fleet=max(n, len(thermostat.FLEET))),
}


def load_dataset(name: str, fleet: int = 0) -> Dataset:
    """The dataset ``name``; ``fleet`` > 0 asks a generated dataset (thermostat) for that many
    fleet groups (its split rule keeps the factory and held-out groups); the others ignore it."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise UsageError(
            f"unknown dataset '{name}'; choose one of: {', '.join(sorted(DATASETS))}"
        ) from None
    if fleet > 0 and name in GROWING:
        return GROWING[name](fleet)
    return loader()


def fleet_groups(name: str, devices: int) -> int:
    """How many fleet groups (users, homes) the dataset has for a fleet of ``devices``."""
    if name in GROWING:
        return max(devices, len(load_dataset(name).scenario.fleet))
    return len(load_dataset(name).scenario.fleet)
