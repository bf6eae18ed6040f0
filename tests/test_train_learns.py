"""Training does learn: on small separable / smooth problems the C loop drives the loss down and
classifies held-out points, and FedProx keeps the weights near the global model."""

from __future__ import annotations

import numpy as np
from oracles import train as tw
from test_train_cbind import c_train_epochs


def blobs(n: int, seed: int, n_classes: int = 4, dim: int = 16):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).normal(0, 3, (n_classes, dim))
    y = rng.integers(0, n_classes, n).astype(np.int32)
    x = (centers[y] + rng.normal(0, 1, (n, dim))).astype(np.float32)
    return x, y


def init(head: tw.HeadSpec, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = []
    for ly in head.layers:
        lim = np.sqrt(6.0 / ly.in_size)
        parts += [rng.uniform(-lim, lim, ly.in_size * ly.out_size), np.zeros(ly.out_size)]
    return np.concatenate(parts).astype(np.float32)


def predict(head: tw.HeadSpec, params: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.array([tw.dense_forward(head, params, xi)[-1] for xi in x])


def test_classification_loss_drops_and_accuracy_is_high():
    head = tw.HeadSpec.mlp([16, 12, 4])
    x, y = blobs(200, 1)
    p0 = init(head, 2)
    cfg = tw.TrainConfig(epochs=15, batch_size=16, seed=3,
                         sgd=tw.SgdConfig(lr=0.05, momentum=0.9, clip=5.0))
    st, p, _, mean, losses = c_train_epochs(head, p0, None, None, x, labels=y, cfg=cfg)
    assert st == "FLT_OK"
    assert losses[-1] < 0.1 * losses[0] and mean == losses[-1]
    xt, yt = blobs(200, 9)
    acc = float(np.mean(predict(head, p, xt).argmax(1) == yt))
    assert acc >= 0.95, acc


def test_regression_loss_drops():
    head = tw.HeadSpec.mlp([2, 16, 16, 1], loss=tw.Loss.MSE)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (128, 2)).astype(np.float32)
    t = (x[:, :1] ** 2 + 0.5 * x[:, 1:]).astype(np.float32)
    p0 = init(head, 5)
    cfg = tw.TrainConfig(epochs=60, batch_size=8, seed=6,
                         sgd=tw.SgdConfig(lr=0.02, momentum=0.9, clip=1.0))
    st, _, _, _, losses = c_train_epochs(head, p0, None, None, x, targets=t, cfg=cfg)
    assert st == "FLT_OK"
    assert losses[-1] < 0.1 * losses[0], losses[[0, -1]]
    assert losses[-1] < 0.01


def test_fedprox_keeps_weights_near_global():
    head = tw.HeadSpec.mlp([16, 12, 4])
    x, y = blobs(64, 7)
    g = init(head, 8)
    dist = {}
    for mu in (0.0, 1.0):
        cfg = tw.TrainConfig(epochs=10, batch_size=8, seed=1,
                             sgd=tw.SgdConfig(lr=0.05, momentum=0.9, mu=mu))
        st, p, _, _, _ = c_train_epochs(head, g, g, None, x, labels=y, cfg=cfg)
        assert st == "FLT_OK"
        dist[mu] = float(np.linalg.norm(p - g))
    assert dist[1.0] < 0.7 * dist[0.0], dist
