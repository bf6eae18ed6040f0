"""Datasets and partitioners: shapes, determinism, scenario and the restricted unpickler."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from fltiny.data import hapt as hapt_mod
from fltiny.data import load_dataset
from fltiny.data.base import Normalization
from fltiny.data.partition import dirichlet, iid, natural, partition
from fltiny.errors import DataError, UsageError


@pytest.fixture(scope="module")
def hapt():
    return load_dataset("hapt")


def test_hapt_windows(hapt):
    assert hapt.x.shape == (10017, 128, 3)
    assert hapt.x.dtype == np.float32
    assert set(np.unique(hapt.y)) == set(range(6))
    counts = np.bincount(hapt.groups)[1:]
    assert len(counts) == 30 and counts.min() >= 269 and counts.max() <= 404
    share = np.bincount(hapt.y) / len(hapt.y)
    assert share.min() > 0.13  # no class below 13%


def test_hapt_gyro_channels():
    d = hapt_mod.load(gyro=True)
    assert d.x.shape[1:] == (128, 6)
    assert d.channel_names[3:] == hapt_mod.GYRO


def test_hapt_scenario_is_disjoint(hapt):
    s = hapt.scenario
    assert set(s.factory) == set(range(1, 11))
    assert set(s.fleet) == set(range(11, 26))
    assert set(s.holdout) == set(range(26, 31))
    assert not set(hapt.factory().groups) & set(hapt.holdout().groups)


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump({1: [Evil()]}, fh)
    hapt_mod.load_recordings.cache_clear()
    with pytest.raises(DataError, match="not allowed"):
        hapt_mod.load_recordings(path)


def test_corrupt_pickle_is_data_error(tmp_path):
    path = tmp_path / "bad.pkl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read the HAPT pickle"):
        hapt_mod.load_recordings(path)


def test_normalization_from_factory_only(hapt):
    norm = Normalization.fit(hapt.factory().x)
    z = norm.apply(hapt.factory().x)
    assert np.allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-3)
    assert np.allclose(z.reshape(-1, 3).std(0), 1, atol=1e-3)
    with pytest.raises(DataError, match="channels"):
        norm.apply(np.zeros((2, 5), np.float32))


def test_thermostat_is_seeded_and_non_iid():
    a, b = load_dataset("thermostat"), load_dataset("thermostat")
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert a.task == "regression" and a.x.shape[1:] == (8,)
    means = [a.y[a.groups == h].mean() for h in range(1, 41)]
    assert np.ptp(means) > 2.0  # homes differ in their habits by degrees


def test_digits():
    d = load_dataset("digits")
    assert d.x.shape == (1797, 8, 8, 1) and d.n_outputs == 10
    assert 0.0 <= d.x.min() and d.x.max() <= 1.0


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'nope'"):
        load_dataset("nope")


def test_natural_partition_one_user_per_client(hapt):
    parts = natural(hapt.groups, hapt.scenario.fleet)
    assert len(parts) == 15
    for g, idx in zip(hapt.scenario.fleet, parts, strict=True):
        assert set(hapt.groups[idx]) == {g}


def test_grouped_partition_keeps_users_whole(hapt):
    from fltiny.data.partition import grouped

    parts = grouped(hapt.groups, hapt.scenario.fleet, 8)
    assert len(parts) == 8
    users = [set(hapt.groups[p].tolist()) for p in parts]
    assert users[0] == {11, 19} and users[7] == {18}  # dealt round-robin
    assert set().union(*users) == set(hapt.scenario.fleet)
    assert sum(len(p) for p in parts) == int(np.isin(hapt.groups, hapt.scenario.fleet).sum())
    with pytest.raises(UsageError, match="grouped partition"):
        grouped(hapt.groups, hapt.scenario.fleet, 16)


def test_iid_partition_covers_everything_once():
    parts = iid(100, 7, seed=3)
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(100))
    assert [len(p) for p in parts] == [15, 15, 14, 14, 14, 14, 14]
    assert all(np.array_equal(a, b) for a, b in zip(parts, iid(100, 7, seed=3), strict=True))


def test_dirichlet_skew_grows_as_alpha_shrinks(hapt):
    def skew(alpha):
        parts = dirichlet(hapt.y, 10, alpha=alpha, seed=1)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(hapt.y)))
        return np.mean([np.bincount(hapt.y[p], minlength=6).max() / len(p) for p in parts])

    assert skew(0.1) > skew(100.0) + 0.2
    a = dirichlet(hapt.y, 10, alpha=0.5, seed=1)
    b = dirichlet(hapt.y, 10, alpha=0.5, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_dirichlet_regression_targets_are_binned():
    y = np.linspace(0, 1, 500, dtype=np.float32)
    parts = dirichlet(y, 5, alpha=1.0, seed=0)
    assert sum(len(p) for p in parts) == 500


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: iid(5, 0), "iid partition"),
        (lambda: dirichlet(np.zeros(10, int), 3, alpha=0), "alpha must be > 0"),
        (lambda: natural(np.array([1, 1, 2]), [1, 9]), "groups \\[9\\]"),
        (lambda: partition("weird", np.zeros(3), np.zeros(3), 1), "unknown partition scheme"),
    ],
)
def test_partition_errors(call, message):
    with pytest.raises(UsageError, match=message):
        call()
