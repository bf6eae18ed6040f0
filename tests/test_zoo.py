"""The model zoo: every variant builds and splits; har-tiny meets its size and accuracy bars."""

from __future__ import annotations

import numpy as np
import pytest

from fltiny.data import load_dataset
from fltiny.models import ZOO


@pytest.mark.parametrize("name", sorted(ZOO))
def test_variant_builds_and_splits(name):
    from fltiny.export.split import split_model

    zoo = ZOO[name]
    ds = load_dataset(zoo.dataset)
    model = zoo.build(ds.input_shape, ds.n_outputs)
    split = split_model(model, zoo.head_layers)
    assert split.head.n_out == ds.n_outputs
    x = np.random.default_rng(0).normal(size=(4, *ds.input_shape)).astype(np.float32)
    # The split is exact: backbone then head gives the whole model's output.
    features = split.backbone.predict(x, verbose=0) if split.backbone is not None else x
    np.testing.assert_allclose(split.head.forward(features), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_zoo_sizes_within_budgets():
    from fltiny.models.measure import measure_zoo

    sizes = {row.name: row for row in measure_zoo()}
    assert set(sizes) == set(ZOO)
    assert sizes["har-tiny"].total_bytes <= 32 * 1024
    assert all(row.total_bytes <= 200 * 1024 for row in sizes.values())
    assert sizes["har-tiny"].total_bytes < sizes["har-small"].total_bytes < \
        sizes["har-gateway"].total_bytes


@pytest.mark.slow
def test_har_tiny_reaches_90_percent_on_held_out_users():
    """Trained centrally in float on users 1-25, evaluated on users 26-30."""
    from fltiny.train import TrainConfig, train_model

    ds = load_dataset("hapt")
    zoo = ZOO["har-tiny"]
    model = zoo.build(ds.input_shape, ds.n_outputs)
    report = train_model(model, ds, TrainConfig(epochs=30, train_on="factory+fleet"),
                         zoo.name, zoo.head_layers)
    assert report.train_samples == len(ds.select(tuple(range(1, 26))).x)
    assert report.holdout_metric == "accuracy"
    assert report.holdout_value >= 0.90, report.holdout_value
