"""Device reputation from the anomaly history: an exponential moving average of good rounds.

Each round a device reports an update, its evidence is 1 when the update passed validation with
an anomaly score at most ``ANOMALY_GOOD`` and 0 otherwise (a hard check failed, the anomaly
score was high); a round without an update (offline, timed out) is no evidence either way.
``score = (1 - RATE) * score + RATE * evidence``, starting at 1. With RATE 0.3 two bad rounds in
a row take a perfect device to 0.49, five good ones bring it back above 0.8. Below the run's
``--reputation-threshold`` the aggregator quarantines the device (a control of origin
``reputation``, fltiny.server.controls) until an operator clears it; clearing resets its score.
"""

from __future__ import annotations

import math

RATE = 0.3
ANOMALY_GOOD = 6.0  # the round loop's ANOMALY_LOG_LEVEL: scores above it are printed


def evidence(validated: bool, anomaly: float | None) -> float:
    """1.0 for a clean update, 0.0 for a rejected or anomalous one."""
    ok = validated and anomaly is not None and not math.isnan(anomaly) and anomaly <= ANOMALY_GOOD
    return 1.0 if ok else 0.0


def next_score(score: float, good: float) -> float:
    return (1.0 - RATE) * score + RATE * good
