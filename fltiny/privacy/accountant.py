"""Epsilon of central DP-FedAvg rounds, by the ``dp-accounting`` package's RDP accountant.

One round is a Poisson-sampled Gaussian mechanism (McMahan, Ramage, Talwar, Zhang 2018,
"Learning Differentially Private Recurrent Language Models", ICLR: DP-FedAvg): every device
takes part with probability q, its update is clipped to L2 norm C and the sum gets Gaussian
noise of standard deviation z * C (z: the noise multiplier), which is user-level DP under
add/remove-one-device adjacency. T rounds compose: ``PoissonSampledDpEvent(q,
GaussianDpEvent(z))`` self-composed T times. ``epsilon`` reports it at a given delta;
``noise_for`` finds the smallest z that keeps T rounds within a target epsilon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fltiny.errors import UsageError


def _event(q: float, z: float, rounds: int) -> Any:
    import absl.logging
    import dp_accounting as dpa

    # its RDP orders that do not converge are left out with a warning each: not the user's news
    absl.logging.set_verbosity(absl.logging.ERROR)

    one = dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z))
    return dpa.SelfComposedDpEvent(one, rounds)


def epsilon(q: float, z: float, rounds: int, delta: float) -> float:
    """Epsilon at ``delta`` after ``rounds`` rounds at sampling rate q and noise multiplier z
    (z == 0: no noise, infinite epsilon; rounds == 0: 0)."""
    if rounds == 0 or q == 0.0:
        return 0.0
    if z == 0.0:
        return math.inf
    from dp_accounting import rdp

    acc = rdp.RdpAccountant()
    acc.compose(_event(q, z, rounds))
    return float(acc.get_epsilon(delta))


def noise_for(target_epsilon: float, delta: float, q: float, rounds: int) -> float:
    """The smallest noise multiplier whose ``rounds`` rounds stay within ``target_epsilon``."""
    import dp_accounting as dpa
    from dp_accounting import rdp

    try:
        z = dpa.calibrate_dp_mechanism(rdp.RdpAccountant, lambda s: _event(q, s, rounds),
                                       target_epsilon, delta,
                                       dpa.mechanism_calibration.LowerEndpointAndGuess(1e-3, 1.0))
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"--dp-epsilon {target_epsilon:g}: no noise multiplier reaches it at "
                         f"delta {delta:g} over {rounds} rounds ({exc}); try a larger "
                         "--dp-epsilon or fewer rounds") from exc
    return float(z)


@dataclass
class RunAccountant:
    """Epsilon as the rounds go: ``spend()`` after each round that released a model."""

    q: float
    z: float
    delta: float
    rounds: int = 0
    _acc: Any = field(default=None, repr=False)

    def spend(self) -> float:
        """One more round; returns epsilon after it."""
        from dp_accounting import rdp

        self.rounds += 1
        if self.z == 0.0:
            return math.inf
        if self._acc is None:
            self._acc = rdp.RdpAccountant()
            if self.rounds > 1:  # resumed: the rounds of the earlier process first
                self._acc.compose(_event(self.q, self.z, self.rounds - 1))
        self._acc.compose(_event(self.q, self.z, 1))
        return float(self._acc.get_epsilon(self.delta))
