"""Validation of client updates before they reach a strategy, with an anomaly score.

Hard checks (a failing update is rejected with its reason): shape, finiteness, a positive
example count, and the L2 norm at most the bound: ``max_norm`` (absolute) and
``max_update_ratio`` times the global model's norm (at least 1). The ratio's default
(``RoundConfig.max_update_ratio``, 10) is far above any honest update: with the default
settings every zoo model's updates stayed below 0.18 x its model's norm (HAPT, thermostat,
digits), so only an absurd update (a tampered scale, a broken device) meets it. Soft check
(logged, and rejected only above ``anomaly_threshold``): a robust z-score of the update's norm
against the round's median norm, ``|norm - median| / (1.4826 * MAD + eps)``, and its cosine
similarity to the coordinate-wise median of the round's updates. With few devices the z-score
is noisy (three devices whose two smaller norms nearly agree give the third a large score), so
its threshold is off by default.

Payload updates (fltiny.strategies.base.ClientUpdate) bring the squared norm the C
accumulator measured when they arrived, so the norm checks and the z-score never densify them.
The cosine to the coordinate-wise median needs the dense matrix: it is computed when the
round's N x n values are at most ``COSINE_MAX_VALUES`` (else reported as NaN).

These checks are all a host can apply to a device whose data it never sees (no replay,
fltiny.bridge.fleet); replayed updates pass them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fltiny.strategies.base import ClientUpdate

COSINE_MAX_VALUES = 1 << 24  # 128 MiB of float64 for the cosine's dense matrix


@dataclass(frozen=True)
class Verdict:
    device_id: int
    accepted: bool
    reason: str
    norm: float
    anomaly: float
    cosine: float


def _cosines(rows: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``rows`` to ``b`` (0 where either norm is 0)."""
    na, nb = np.linalg.norm(rows, axis=1), float(np.linalg.norm(b))
    den = na * nb
    return np.divide(rows @ b, den, out=np.zeros(len(rows)), where=den > 0)


def validate_updates(
    global_params: np.ndarray,
    updates: Sequence[ClientUpdate],
    max_norm: float = float("inf"),
    anomaly_threshold: float = float("inf"),
    max_update_ratio: float = float("inf"),
) -> tuple[list[ClientUpdate], list[Verdict]]:
    """(accepted updates, one verdict per update in input order)."""
    verdicts: list[Verdict | None] = [None] * len(updates)
    sane: list[int] = []
    g_norm = float(np.linalg.norm(global_params.astype(np.float64)))
    relative = max_update_ratio * max(g_norm, 1.0)
    for i, u in enumerate(updates):
        reason = ""
        if u.shape != global_params.shape:
            reason = f"shape {u.shape} != model {global_params.shape}"
        elif u.payload is None and not np.all(np.isfinite(u.delta)):
            reason = "non-finite values"
        elif u.num_examples <= 0:
            reason = f"example count {u.num_examples}"
        else:
            norm = float(np.sqrt(u.sq_norm()))
            if not np.isfinite(norm):
                reason = "non-finite values"
            elif norm > max_norm:
                reason = f"norm {norm:.4g} above bound {max_norm:.4g}"
            elif norm > relative:
                reason = (f"norm {norm:.4g} above bound {relative:.4g} ({max_update_ratio:g} x "
                          f"the global model's norm {max(g_norm, 1.0):.4g}, --max-update-norm)")
        if reason:
            verdicts[i] = Verdict(u.device_id, False, reason, float("nan"), float("nan"), 0.0)
        else:
            sane.append(i)
    if sane:
        norms = np.sqrt(np.array([updates[i].sq_norm() for i in sane], np.float64))
        med = float(np.median(norms))
        mad = float(np.median(np.abs(norms - med)))
        cosines = np.full(len(sane), np.nan)
        if len(sane) * global_params.size <= COSINE_MAX_VALUES:
            deltas = np.stack([updates[i].delta.astype(np.float64).reshape(-1) for i in sane])
            cosines = _cosines(deltas, np.median(deltas, axis=0))
        for j, i in enumerate(sane):
            z = abs(norms[j] - med) / (1.4826 * mad + 1e-12 + 1e-6 * med)
            cos = float(cosines[j])
            ok = z <= anomaly_threshold
            reason = "" if ok else (
                f"anomaly score {z:.1f} above --anomaly-threshold {anomaly_threshold:g} (norm "
                f"{norms[j]:.4g}, the round's median {med:.4g} over {len(sane)} updates)")
            verdicts[i] = Verdict(updates[i].device_id, ok, reason, float(norms[j]), float(z), cos)
    final = [v for v in verdicts if v is not None]
    accepted = [u for u, v in zip(updates, final, strict=True) if v.accepted]
    return accepted, final
