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


def _calibrate(event_of: Any, target_epsilon: float, delta: float, rounds: int,
               flag: str) -> float:
    """The smallest noise multiplier z whose ``event_of(z)`` stays within ``target_epsilon``
    at ``delta`` (dp-accounting's calibration over its RDP accountant); ``flag`` names the
    option in the one-line error."""
    import dp_accounting as dpa
    from dp_accounting import rdp

    try:
        z = dpa.calibrate_dp_mechanism(rdp.RdpAccountant, event_of, target_epsilon, delta,
                                       dpa.mechanism_calibration.LowerEndpointAndGuess(1e-3, 1.0))
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"{flag} {target_epsilon:g}: no noise multiplier reaches it at delta "
                         f"{delta:g} over {rounds} rounds ({exc}); try a larger {flag} or "
                         "fewer rounds") from exc
    return float(z)


def noise_for(target_epsilon: float, delta: float, q: float, rounds: int) -> float:
    """The smallest noise multiplier whose ``rounds`` rounds stay within ``target_epsilon``."""
    return _calibrate(lambda s: _event(q, s, rounds), target_epsilon, delta, rounds,
                      "--dp-epsilon")


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


def _local_event(z: float, rounds: int) -> Any:
    import absl.logging
    import dp_accounting as dpa

    absl.logging.set_verbosity(absl.logging.ERROR)
    # sensitivity 2 C (any two data sets of the device), noise z C: multiplier z / 2
    return dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z / 2.0), rounds)


def local_epsilon(z: float, rounds: int, delta: float) -> float:
    """Epsilon at ``delta`` of one device's updates after it released ``rounds`` of them under
    local DP (privacy/local_dp.h: each update clipped to C on the device, Gaussian noise of
    standard deviation z * C added there): the Gaussian mechanism with L2 sensitivity 2 C
    (replace-one-data-set adjacency: every update lies in the ball of radius C), noise
    multiplier z / 2, self-composed ``rounds`` times. No sampling amplification: a device's
    privacy does not depend on whether the server asks others."""
    if rounds == 0:
        return 0.0
    if z == 0.0:
        return math.inf
    from dp_accounting import rdp

    acc = rdp.RdpAccountant()
    acc.compose(_local_event(z, rounds))
    return float(acc.get_epsilon(delta))


def local_noise_for(target_epsilon: float, delta: float, rounds: int) -> float:
    """The smallest local-DP noise multiplier whose ``rounds`` releases stay within
    ``target_epsilon`` for every device."""
    return _calibrate(lambda s: _local_event(s, rounds), target_epsilon, delta, rounds,
                      "--ldp-epsilon")


@dataclass
class LocalAccountant:
    """Local DP as the rounds go: the worst device's epsilon (the most releases)."""

    z: float
    delta: float
    releases: dict[int, int] = field(default_factory=dict)
    _cache: dict[int, float] = field(default_factory=dict, repr=False)

    def spend(self, devices: list[int]) -> float:
        """Each entry of ``devices`` is one more release of that device (a device listed twice
        released twice); returns the worst device's epsilon."""
        for d in devices:
            self.releases[d] = self.releases.get(d, 0) + 1
        worst = max(self.releases.values(), default=0)
        if worst not in self._cache:
            self._cache[worst] = local_epsilon(self.z, worst, self.delta)
        return self._cache[worst]
