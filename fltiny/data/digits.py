"""scikit-learn's 8x8 handwritten digits (1,797 images), a quick smoke-test set.

The set has no writer ids, so samples are dealt round-robin into 30 pseudo-users that play
the parts of HAPT's users (1-10 factory, 11-25 fleet, 26-30 held out): IID by construction.
"""

from __future__ import annotations

import numpy as np

from fltiny.data.base import Dataset, Scenario

SCENARIO = Scenario(
    factory=tuple(range(1, 11)), fleet=tuple(range(11, 26)), holdout=tuple(range(26, 31))
)


def load() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int64)
    groups = (np.arange(len(y)) % 30 + 1).astype(np.int64)
    return Dataset(
        name="digits",
        task="classification",
        x=x,
        y=y,
        groups=groups,
        scenario=SCENARIO,
        class_names=tuple(str(i) for i in range(10)),
        channel_names=("ink",),
        description="scikit-learn digits, 8x8x1 images, 10 classes",
    )
