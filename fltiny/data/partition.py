"""Federated partitioners: which samples each client (device) holds.

- ``natural``: one group (HAPT user, thermostat home) per client, in the order given;
- ``grouped``: every group (user, home) is kept whole, and the groups are dealt round-robin
  to the clients (client i gets groups i, i + n, i + 2n, ...): fewer devices than users, each
  holding a few users' data, e.g. a household sharing one sensor;
- ``iid``: a seeded shuffle dealt into equal shares;
- ``dirichlet``: label skew after Hsu, Qi and Brown (2019), "Measuring the Effects of
  Non-Identical Data Distribution for Federated Visual Classification": for each class, the
  class's samples are split among clients by proportions drawn from Dirichlet(alpha); small
  alpha gives each client few classes. Regression targets are binned into quintiles first.

All return a list of sorted index arrays, one per client, deterministic in ``seed``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fltiny.errors import UsageError

Scheme = Literal["natural", "grouped", "iid", "dirichlet"]


def natural(groups: np.ndarray, clients: tuple[int, ...] | list[int]) -> list[np.ndarray]:
    parts = [np.flatnonzero(groups == g) for g in clients]
    empty = [g for g, p in zip(clients, parts, strict=True) if len(p) == 0]
    if empty:
        raise UsageError(f"natural partition: groups {empty} have no samples")
    return parts


def grouped(groups: np.ndarray, clients: tuple[int, ...] | list[int],
            n_clients: int) -> list[np.ndarray]:
    if n_clients < 1 or n_clients > len(clients):
        raise UsageError(f"grouped partition: need 1..{len(clients)} clients, got {n_clients}")
    parts = [np.flatnonzero(np.isin(groups, list(clients)[i::n_clients]))
             for i in range(n_clients)]
    if any(len(p) == 0 for p in parts):
        raise UsageError("grouped partition: a client got no samples")
    return parts


def iid(n_samples: int, n_clients: int, seed: int = 0) -> list[np.ndarray]:
    if n_clients < 1 or n_clients > n_samples:
        raise UsageError(f"iid partition: need 1..{n_samples} clients, got {n_clients}")
    order = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def dirichlet(
    labels: np.ndarray, n_clients: int, alpha: float = 0.5, seed: int = 0, min_size: int = 1
) -> list[np.ndarray]:
    if alpha <= 0:
        raise UsageError(f"dirichlet partition: alpha must be > 0, got {alpha}")
    if n_clients < 1 or n_clients * min_size > len(labels):
        raise UsageError(f"dirichlet partition: cannot give {n_clients} clients {min_size}+ samples")
    if labels.dtype.kind == "f":
        edges = np.quantile(labels, [0.2, 0.4, 0.6, 0.8])
        labels = np.searchsorted(edges, labels)
    rng = np.random.default_rng(seed)
    for _attempt in range(100):
        shares: list[list[int]] = [[] for _ in range(n_clients)]
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            props = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(props)[:-1] * len(idx)).astype(int)
            for client, part in enumerate(np.split(idx, cuts)):
                shares[client].extend(part.tolist())
        if min(len(s) for s in shares) >= min_size:
            return [np.sort(np.asarray(s, dtype=np.int64)) for s in shares]
    raise UsageError(
        f"dirichlet partition: no draw gave every client {min_size}+ samples; raise alpha"
    )


def partition(
    scheme: Scheme,
    labels: np.ndarray,
    groups: np.ndarray,
    n_clients: int,
    clients: tuple[int, ...] | list[int] = (),
    alpha: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray]:
    """Dispatch by scheme name; ``clients`` lists the groups for ``natural``."""
    if scheme == "natural":
        chosen = list(clients) or sorted(np.unique(groups).tolist())
        return natural(groups, chosen[:n_clients])
    if scheme == "grouped":
        return grouped(groups, list(clients) or sorted(np.unique(groups).tolist()), n_clients)
    if scheme == "iid":
        return iid(len(labels), n_clients, seed)
    if scheme == "dirichlet":
        return dirichlet(labels, n_clients, alpha, seed)
    raise UsageError(
        f"unknown partition scheme '{scheme}'; choose natural, grouped, iid or dirichlet")
