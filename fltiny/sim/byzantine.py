"""Which devices are Byzantine (``fltiny simulate --byzantine 0.2 --attack ...``) and the
attacks they can run; what each attack does is fltiny.sim.adversary. No heavy imports: the CLI
reads ``ATTACKS`` at start-up."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fltiny.errors import UsageError

ATTACKS = ("sign-flip", "scale10", "noise", "label-flip", "model-replacement", "silent")
FLIPS_LABELS = ("label-flip", "model-replacement")  # attacks that train on flipped labels
NEEDS_LABELS = ("--attack label-flip and model-replacement flip class labels: they need a "
                "classification dataset (e.g. --dataset hapt) or another --attack")


def byzantine_count(fraction: float, devices: int) -> int:
    """How many of ``devices`` are Byzantine for ``--byzantine fraction`` (rounded to the
    nearest device); UsageError when a positive share rounds to none or to all of them."""
    if fraction <= 0:
        return 0
    count = int(round(fraction * devices))
    if count < 1:
        raise UsageError(f"--byzantine {fraction:g} of {devices} devices is no device: use at "
                         f"least {1 / devices:.3g} (one device) or more --clients")
    if count >= devices:
        raise UsageError(f"--byzantine {fraction:g} makes all {devices} devices Byzantine: "
                         "leave at least one honest device (a smaller --byzantine)")
    return count


def byzantine_devices(ids: Sequence[int], fraction: float, seed: int) -> frozenset[int]:
    """The compromised devices among ``ids``: a seeded choice, fixed for the run."""
    count = byzantine_count(fraction, len(ids))
    if count == 0:
        return frozenset()
    rng = np.random.default_rng([seed, 0xB12A])
    return frozenset(int(d) for d in rng.choice(sorted(ids), size=count, replace=False))


def check_attack(attack: str, task: str) -> None:
    """UsageError when ``attack`` cannot run on a dataset of ``task`` (label flipping needs
    class labels)."""
    if attack in FLIPS_LABELS and task != "classification":
        raise UsageError(NEEDS_LABELS)
