"""Federated partitioners: which samples each client (device) holds.

- ``natural``: one group (HAPT user, thermostat home) per client, in the order given;
- ``grouped``: every group (user, home) is kept whole, and the groups are dealt round-robin
  to the clients (client i gets groups i, i + n, i + 2n, ...): fewer devices than users, each
  holding a few users' data, e.g. a household sharing one sensor;
- ``streams``: more devices than users, each device a contiguous stretch of one user's
  windows (HAPT: a stretch of the user's recording, in time order). Device i (0-based) records
  user ``users[i % U]``; a user's m devices (k = i // U, k = 0..m-1) hold stretches of
  L = min(n_u, max(16, n_u // m)) of the user's n_u windows, starting at
  floor(k * (n_u - L) / (m - 1)): the recording shared out in disjoint stretches while they
  are 16 windows or more, overlapping stretches of 16 beyond (HAPT: 10,000 devices). With as
  many devices as users it is the natural partition. Deterministic, no seed;
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

Scheme = Literal["natural", "grouped", "streams", "iid", "dirichlet"]
MIN_STREAM = 16  # windows per device stream at least (HAPT: ~21 s of activity)


def _by_group(groups: np.ndarray, clients: tuple[int, ...] | list[int]) -> list[np.ndarray]:
    """Each client group's sample indices in dataset order (one sort: 10,000 groups of 5
    million samples take a second, not one scan per group)."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    keys = np.asarray(list(clients), dtype=groups.dtype)
    lo, hi = np.searchsorted(ordered, keys, "left"), np.searchsorted(ordered, keys, "right")
    return [order[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]


def natural(groups: np.ndarray, clients: tuple[int, ...] | list[int]) -> list[np.ndarray]:
    parts = _by_group(groups, clients)
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


def streams(groups: np.ndarray, users: tuple[int, ...] | list[int],
            n_clients: int) -> list[np.ndarray]:
    """Device streams: contiguous stretches of one user's windows (module docstring)."""
    if n_clients < 1:
        raise UsageError(f"streams partition: need at least 1 client, got {n_clients}")
    per_user = natural(groups, users)
    n_users = len(per_user)
    parts = []
    for i in range(n_clients):
        windows = per_user[i % n_users]
        k, m = i // n_users, len(range(i % n_users, n_clients, n_users))
        size = min(len(windows), max(MIN_STREAM, len(windows) // m))
        start = (k * (len(windows) - size)) // max(1, m - 1)
        parts.append(windows[start:start + size])
    return parts


def iid(n_samples: int, n_clients: int, seed: int = 0) -> list[np.ndarray]:
    if n_clients < 1 or n_clients > n_samples:
        raise UsageError(f"iid partition: need 1..{n_samples} clients, got {n_clients}; "
                         "--partition streams deals more devices than windows")
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
    if scheme == "streams":
        return streams(groups, list(clients) or sorted(np.unique(groups).tolist()), n_clients)
    if scheme == "iid":
        return iid(len(labels), n_clients, seed)
    if scheme == "dirichlet":
        return dirichlet(labels, n_clients, alpha, seed)
    raise UsageError(
        f"unknown partition scheme '{scheme}'; choose natural, grouped, streams, iid or dirichlet")
