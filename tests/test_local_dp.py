"""Local differential privacy (TRAIN flag LOCAL_DP, firmware/runtime/privacy/local_dp.h): the
device clips its round update and adds Gaussian noise from its own secret, in C.

Pinned here: the TRAIN's two extra fields and their rules, the noise stream against an
independent oracle (the `cryptography` package's HKDF and ChaCha20, numpy's float64 log and
sqrt), its statistics, the clip, the round through the same C (noised payload, unnoised local
model and metadata), the accountant against dp-accounting, and emulated boards whose noised
rounds replay up to the noise.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest


def _train(**kw):
    from fltiny.bridge.messages import TRAIN_LOCAL_DP, Train

    base = dict(round=1, epochs=1, batch_size=8, learning_rate=0.01, topk_fraction=0.1,
                flags=TRAIN_LOCAL_DP, ldp_clip=0.5, ldp_noise=1.25)
    base.update(kw)
    return Train(**base)


def test_train_carries_the_two_fields_only_with_the_flag():
    from fltiny.bridge.messages import TRAIN_SIZE, Train
    from fltiny.native.errors import ProtocolError

    t = _train()
    raw = t.encode()
    assert len(raw) == TRAIN_SIZE + 8
    assert Train.decode(raw) == t
    plain = _train(flags=0, ldp_clip=0.0, ldp_noise=0.0).encode()
    assert len(plain) == TRAIN_SIZE
    with pytest.raises(ProtocolError) as e:  # the flag says 44 bytes
        Train.decode(raw[:TRAIN_SIZE])
    assert e.value.status == "FLT_ERR_TRUNCATED"
    with pytest.raises(ProtocolError) as e:  # no flag: 36 bytes exactly
        Train.decode(plain + bytes(8))
    assert e.value.status == "FLT_ERR_FORMAT"
    for bad in (dict(ldp_clip=0.0), dict(ldp_noise=0.0), dict(ldp_clip=-1.0),
                dict(flags=0, ldp_noise=0.0)):
        with pytest.raises(ProtocolError) as e:
            _train(**bad).encode()
        assert e.value.status == "FLT_ERR_RANGE", bad
    with pytest.raises(ProtocolError) as e:
        _train(ldp_noise=float("inf")).encode()
    assert e.value.status == "FLT_ERR_NONFINITE"


def _oracle_gaussians(key: bytes, nonce: int, n: int) -> np.ndarray:
    """An independent implementation of local_dp.h's noise stream."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    k = HKDF(hashes.SHA256(), 32, None, b"fltiny ldp" + nonce.to_bytes(4, "little")).derive(key)
    words = n * 4 + 64  # enough: each pair is accepted with probability pi / 4
    stream = Cipher(algorithms.ChaCha20(k, bytes(16)), mode=None).encryptor().update(
        bytes(4 * words))
    r = np.frombuffer(stream, "<u4")
    u = ((((r >> 8).astype(np.int64) - 2**23).astype(np.float32) + np.float32(0.5))
         / np.float32(2**23)).astype(np.float32)
    out: list[float] = []
    for a, b in zip(u[0::2], u[1::2], strict=True):
        s = np.float32(a * a) + np.float32(b * b)
        if s >= 1 or s == 0:
            continue
        f = math.sqrt(-2.0 * math.log(float(s)) / float(s))
        out += [float(a) * f, float(b) * f]
        if len(out) >= n:
            return np.array(out[:n])
    raise AssertionError("oracle stream too short")


def test_noise_stream_matches_an_independent_oracle():
    from fltiny.native.local_dp import gaussians

    key = bytes(range(32))
    got = gaussians(key, 7, 2001)
    np.testing.assert_allclose(got, _oracle_gaussians(key, 7, 2001), rtol=2e-6, atol=2e-6)
    assert not np.allclose(got[:100], gaussians(key, 8, 100))  # another nonce, another stream
    assert not np.allclose(got[:100], gaussians(bytes(31) + b"\1", 7, 100))  # another key
    np.testing.assert_array_equal(got, gaussians(key, 7, 2001))  # deterministic


def test_noise_is_standard_normal():
    from scipy import stats

    from fltiny.native.local_dp import gaussians

    g = gaussians(os.urandom(32), 0, 200_000).astype(np.float64)
    assert abs(g.mean()) < 0.01 and abs(g.std() - 1.0) < 0.01
    assert stats.kstest(g, "norm").pvalue > 1e-4


def test_privatize_clips_then_adds_noise():
    from fltiny.native.errors import ProtocolError
    from fltiny.native.local_dp import privatize

    rng = np.random.default_rng(0)
    g = rng.normal(size=5000).astype(np.float32)
    u = rng.normal(size=5000).astype(np.float32)
    u *= np.float32(3.0 / np.linalg.norm(u))
    key = os.urandom(32)
    out, norm = privatize(g + u, g, clip=1.0, noise=1e-4, key=key, nonce=0)
    assert norm == pytest.approx(3.0, rel=1e-5)
    np.testing.assert_allclose(out - g, u / 3.0, atol=1e-3)  # clipped to norm 1
    small = u / np.float32(6.0)  # norm 0.5 < clip: not scaled
    out, norm = privatize(g + small, g, clip=1.0, noise=1e-4, key=key, nonce=1)
    np.testing.assert_allclose(out - g, small, atol=1e-3)
    out, _ = privatize(g, g, clip=0.5, noise=2.0, key=key, nonce=2)  # no update: noise alone
    assert np.std(out - g) == pytest.approx(1.0, rel=0.05)
    for clip, noise in ((0.0, 1.0), (1.0, -1.0), (float("nan"), 1.0)):
        with pytest.raises(ProtocolError):
            privatize(g + u, g, clip=clip, noise=noise, key=key, nonce=0)


def test_round_noises_the_payload_not_the_local_model(har_tiny_bundle):
    from fltiny.devices.data import DataBlob
    from fltiny.devices.replay import HostRound
    from fltiny.errors import RuntimeStatusError

    hr = HostRound(har_tiny_bundle)
    blob = _blob(hr, har_tiny_bundle)
    g = np.asarray(hr.head.params, np.float32)
    ldp = _train(topk_fraction=0.1, ldp_clip=0.05, ldp_noise=1.0)
    plain = _train(topk_fraction=0.1, flags=0, ldp_clip=0.0, ldp_noise=0.0)
    key = os.urandom(32)
    a = hr.run(g, blob, ldp, ldp_key=key, ldp_nonce=3)
    b = hr.run(g, blob, ldp, ldp_key=key, ldp_nonce=3)
    c = hr.run(g, blob, ldp, ldp_key=key, ldp_nonce=4)
    p = hr.run(g, blob, plain)
    assert a.payload == b.payload and a.payload != c.payload and a.payload != p.payload
    # what the noise does not cover is not reported (loss, personal metric); the local model
    # is the plain round's (never noised, never sent); the example count is what a host replays
    assert p.personal_n > 0 and p.mean_loss > 0
    for r in (a, c):
        assert r.examples == p.examples
        assert (r.mean_loss, r.personal_n, r.personal_metric) == (0.0, 0, 0.0)
        np.testing.assert_array_equal(r.params, p.params)
    with pytest.raises(RuntimeStatusError, match="FLT_ERR_ARG"):  # without the device's secret
        hr.run(g, blob, ldp)
    assert isinstance(blob, DataBlob)


def _blob(hr, bundle):
    from fltiny.devices.data import fleet_blobs

    return fleet_blobs(bundle, 1, max_windows=64)[0]


def test_simulate_reports_the_accountants_epsilon(har_tiny_bundle, tmp_path, cli):
    import dp_accounting as dpa
    from dp_accounting import rdp

    out = tmp_path / "sim"
    code, _o, err = cli("simulate", "--bundle", str(har_tiny_bundle), "--clients", "3",
                        "--rounds", "2", "--ldp-clip", "0.05", "--ldp-noise", "2.0",
                        "--out", str(out))
    assert code == 0, err
    data = json.loads((out / "metrics.json").read_text())
    rows = [r for r in data["rounds"] if r["round"] > 0]
    for r in rows:  # independent: sensitivity 2 C, noise 2 C -> multiplier 1, r releases
        acc = rdp.RdpAccountant()
        acc.compose(dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(1.0), r["round"]))
        assert r["ldp_epsilon"] == pytest.approx(acc.get_epsilon(1e-5), rel=1e-9)
    assert data["summary"]["local_dp"]["epsilon"] == rows[-1]["ldp_epsilon"]


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.tools("qemu-system-arm", "qemu-system-riscv32", "arm-none-eabi-gcc",
                   "riscv64-unknown-elf-gcc")
def test_emulated_boards_noise_their_own_updates(har_tiny_bundle, tmp_path):
    """qemu-m4f and qemu-rv32 boards noise their DELTAs with the boot secret their launcher
    loaded (the bridge never sees it): every round replays up to the noise, none bit for bit,
    and the payloads carry the noise (norms far above the clip bound of the update)."""
    from fltiny.experiment import DataSettings, RoundConfig
    from fltiny.run.runner import RunOptions, run
    from fltiny.server.config import TrainParams
    from fltiny.server.store import RunStore

    clip = 0.05
    out = tmp_path / "report"
    res = run(RunOptions(fleet=[("qemu-m4f", 2), ("qemu-rv32", 1)],
                         server=RoundConfig(rounds=2, deadline_s=120,
                                            train=TrainParams(ldp_clip=clip, ldp_noise=1.0)),
                         data=DataSettings(bundle=har_tiny_bundle), out=out,
                         build_root=tmp_path / "build"),
              say=print, log=print)
    s = res.summary
    assert s["device_rounds"] == 6 and s["replayed"] == 6
    assert s["replay_metadata_verified"] == 6 and s["replay_verified"] == 0
    assert s["replay_mismatches"] == 0
    assert res.rounds[-1]["ldp_epsilon"] > 0
    store = RunStore(out / "run.sqlite")
    try:
        ups = [u for u in store.updates() if u["round"] > 0]
    finally:
        store.close()
    assert len(ups) == 6 and all(u["accepted"] == 1 for u in ups)
    assert min(u["norm"] for u in ups) > 5 * clip  # noise of std clip on 1,030 coordinates


def test_dashboard_names_the_protections():
    from fltiny.dashboard.state import _privacy

    ckpts = [{"epsilon": None, "ldp_epsilon": None}, {"epsilon": None, "ldp_epsilon": 12.5}]
    text = _privacy({"train": {"ldp_clip": 0.05, "ldp_noise": 2.0}, "dp_delta": 1e-5}, ckpts)
    assert "local DP" in text and "0.05" in text and "12.500" in text
    assert "secure aggregation" in _privacy({"secagg": True, "train": {}}, [])
    assert _privacy({"train": {}}, []).startswith("off")


def test_ldp_epsilon_derives_the_noise(har_tiny_bundle, tmp_path, cli):
    out = tmp_path / "sim"
    code, _o, err = cli("simulate", "--bundle", str(har_tiny_bundle), "--clients", "2",
                        "--rounds", "2", "--ldp-clip", "0.05", "--ldp-epsilon", "20",
                        "--out", str(out))
    assert code == 0, err
    data = json.loads((out / "metrics.json").read_text())
    eps = [r["ldp_epsilon"] for r in data["rounds"] if r["round"] > 0]
    assert eps[0] < eps[1] <= 20.0 and eps[1] > 19.0  # the target, spent over the planned rounds
    assert data["summary"]["local_dp"]["ldp_noise"] > 0


@pytest.mark.parametrize("args, needle", [
    (("--ldp-clip", "0.05"), "--ldp-noise Z"),
    (("--ldp-noise", "1"), "--ldp-clip C"),
    (("--ldp-epsilon", "4"), "--ldp-clip C"),
    (("--ldp-clip", "0.05", "--ldp-noise", "1", "--ldp-epsilon", "4"), "no --ldp-noise"),
    (("--ldp-clip", "0.05", "--ldp-noise", "1", "--secagg"), "choose one protection"),
    (("--ldp-clip", "-1", "--ldp-noise", "1"), "--ldp-clip"),
    (("--ldp-clip", "0.05", "--ldp-noise", "1", "--self-check", "0.2"), "--self-check"),
])
def test_local_dp_options_refused_in_one_line(args, needle, cli, tmp_path):
    code, out, err = cli("simulate", "--clients", "2", "--rounds", "1", *args,
                         "--out", str(tmp_path / "x"))
    text = out + err
    assert code != 0 and needle in text and "Traceback" not in text
