"""Central differential privacy (fltiny/privacy): the mechanism against a numpy oracle, the
accountant against dp-accounting's RDP accountant built independently here, a simulated run on
the firmware's C that reports epsilon per round and in total, and the bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fltiny.errors import UsageError
from fltiny.privacy.accountant import RunAccountant, epsilon, noise_for
from fltiny.privacy.central import CentralDP, clip, poisson_sample
from fltiny.server.config import RoundConfig
from fltiny.strategies import make_strategy
from fltiny.strategies.base import ClientUpdate


def _dp_accounting_epsilon(q: float, z: float, rounds: int, delta: float) -> float:
    """T separate Poisson-sampled Gaussian events composed one by one (not self-composed)."""
    import dp_accounting as dpa
    from dp_accounting import rdp

    acc = rdp.RdpAccountant()
    for _ in range(rounds):
        acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)))
    return float(acc.get_epsilon(delta))


@pytest.mark.parametrize("q,z,rounds", [(0.05, 1.1, 30), (0.5, 2.0, 5), (1.0, 4.0, 10)])
def test_accountant_matches_dp_accounting(q, z, rounds):
    want = _dp_accounting_epsilon(q, z, rounds, 1e-5)
    assert epsilon(q, z, rounds, 1e-5) == pytest.approx(want, rel=1e-9)
    run = RunAccountant(q, z, 1e-5)
    per_round = [run.spend() for _ in range(rounds)]
    assert per_round[-1] == pytest.approx(want, rel=1e-9)
    assert all(a < b for a, b in zip(per_round, per_round[1:], strict=False))
    # a resumed run carries on from the rounds already spent
    assert RunAccountant(q, z, 1e-5, rounds=rounds - 1).spend() == pytest.approx(want, rel=1e-9)


def test_noise_for_reaches_the_target():
    z = noise_for(4.0, 1e-5, 0.05, 30)
    assert epsilon(0.05, z, 30, 1e-5) <= 4.0 + 1e-6
    assert epsilon(0.05, z * 0.97, 30, 1e-5) > 4.0  # and not much more noise than needed
    assert epsilon(0.05, 0.0, 3, 1e-5) == float("inf")


def test_mechanism_is_the_clipped_noisy_fixed_denominator_mean():
    rng = np.random.default_rng(7)
    deltas = [rng.normal(0, s, 4000).astype(np.float32) for s in (0.001, 0.01, 0.05)]
    updates = [ClientUpdate(i, d, num_examples=10 * (i + 1)) for i, d in enumerate(deltas)]
    c, q, n = 0.2, 0.1, 40
    exact = CentralDP(c, 0.0, q).combine(updates, n)
    oracle = np.zeros(4000)
    for d in deltas:  # example counts play no part: every device weighs the same
        norm = np.sqrt(np.sum(d.astype(np.float64) ** 2))
        oracle += d * min(1.0, c / norm)
    assert np.allclose(exact, oracle / (q * n), atol=1e-9)
    assert np.linalg.norm(clip(deltas[2], c)) == pytest.approx(c)
    noisy = CentralDP(c, 1.5, q, rng=np.random.default_rng(1)).combine(updates, n)
    noise = (noisy.astype(np.float64) - oracle / (q * n)) * (q * n)
    assert noise.std() == pytest.approx(1.5 * c, rel=0.05)
    assert abs(noise.mean()) < 0.05 * c


def test_poisson_sampling_rate():
    rng = np.random.default_rng(3)
    counts = [len(poisson_sample(range(1000), 0.05, rng)) for _ in range(200)]
    assert np.mean(counts) == pytest.approx(50, rel=0.05)
    assert len(set(counts)) > 5  # not a fixed-size sample


def test_bad_privacy_options_are_named():
    with pytest.raises(UsageError, match="--dp-clip C"):
        RoundConfig(dp_noise=1.0)
    with pytest.raises(UsageError, match="not both"):
        RoundConfig(dp_clip=0.1, dp_noise=1.0, dp_epsilon=2.0)
    with pytest.raises(UsageError, match="needs --dp-noise"):
        RoundConfig(dp_clip=0.1)
    with pytest.raises(UsageError, match="--dp-delta"):
        RoundConfig(dp_clip=0.1, dp_noise=1.0, dp_delta=0.0)
    with pytest.raises(UsageError, match="mean-based"):
        CentralDP.check_strategy(make_strategy("krum"))


@pytest.mark.slow
def test_simulated_run_reports_epsilon_per_round_and_in_total(cli, har_tiny_bundle, tmp_path):
    out = tmp_path / "dp"
    code, stdout, stderr = cli("simulate", "--bundle", har_tiny_bundle, "--clients", "15",
                               "--rounds", "3", "--fraction", "0.5", "--strategy", "fedavg",
                               "--dp-clip", "0.1", "--dp-noise", "1.2", "--out", out)
    assert code == 0, stderr
    assert "epsilon" in stdout.splitlines()[0] or "epsilon" in stdout
    report = json.loads((out / "metrics.json").read_text())
    eps = [r["epsilon"] for r in report["rounds"] if r["round"] > 0]
    want = [_dp_accounting_epsilon(0.5, 1.2, t, 1e-5) for t in (1, 2, 3)]
    assert eps == pytest.approx(want, rel=1e-9)
    privacy = report["summary"]["privacy"]
    assert privacy["epsilon"] == pytest.approx(want[-1], rel=1e-9)
    assert (privacy["dp_clip"], privacy["dp_noise"], privacy["sampling_rate"]) == (0.1, 1.2, 0.5)
    code, _out, err = cli("simulate", "--bundle", har_tiny_bundle, "--clients", "15",
                          "--rounds", "1", "--strategy", "krum", "--dp-clip", "0.1",
                          "--dp-noise", "1", "--out", tmp_path / "krum")
    assert code != 0 and "mean-based" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
