"""Write the shared C/Python vectors of the delta pipeline and payload codec.

    .venv/bin/python tests/vectors/make_delta_vectors.py

Deterministic (fixed seeds, numpy's PCG64). Writes tests/vectors/delta/:
  manifest.json   one entry per case: parameters, expected indices / values / scales (float32
                  bit patterns as hex), payload (hex), index format chosen, section sizes and
                  sha256 of acc and of the new residual (float32 little-endian bytes)
  <case>.bin      the inputs, float32 little-endian: local, global, then residual_in
                  (residual_in only when "has_residual" is true; zeros otherwise)
The expected outputs come from the numpy oracles (tests/oracles); the tests check that the C
runtime reproduces them bit for bit and that the oracles still do.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the oracles
from oracles import delta as tw  # noqa: E402
from oracles import payload as pl  # noqa: E402
from oracles.delta import QuantMode  # noqa: E402

OUT = Path(__file__).resolve().parent / "delta"


def _normal(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(n) * scale).astype(np.float32)


def _cases() -> list[dict]:
    """(name, inputs, params). Each input generator has its own seed."""
    cases: list[dict] = []

    def add(name, local, global_, residual=None, *, k=None, ppm=None, mode=QuantMode.TENSOR,
            block_size=0, error_feedback=True, note=""):
        n = local.size
        kk = k if k is not None else tw.k_from_ppm(n, ppm)
        cases.append(dict(name=name, local=local, global_=global_, residual=residual, k=kk,
                          ppm=ppm, mode=mode, block_size=block_size,
                          error_feedback=error_feedback, note=note))

    rng = np.random.default_rng(1)
    add("n1_k1", _normal(rng, 1), _normal(rng, 1), k=1, note="smallest case")

    # exact ties (+-0.5, +-0) to pin the lower-index rule, per block of 2
    loc = np.array([0.5, -0.5, 0.25, 0.5, -0.0, 0.0, -0.5], np.float32)
    add("n7_ties_block2", loc, np.zeros(7, np.float32), k=3, mode=QuantMode.BLOCK,
        block_size=2, note="ties broken by lower index")

    rng = np.random.default_rng(2)
    add("n100_ppm100000", _normal(rng, 100), _normal(rng, 100), ppm=100_000)

    rng = np.random.default_rng(3)
    add("n1000_ppm10000", _normal(rng, 1000, 0.01), _normal(rng, 1000, 0.01), ppm=10_000,
        note="sparse, Rice expected")

    rng = np.random.default_rng(4)
    add("n1000_ppm400000_block32", _normal(rng, 1000), _normal(rng, 1000), ppm=400_000,
        mode=QuantMode.BLOCK, block_size=32, note="dense, bitmap expected")

    rng = np.random.default_rng(5)
    add("n2048_k1", _normal(rng, 2048), _normal(rng, 2048), k=1, note="varint expected")

    # update concentrated in two far-apart layers: clustered indices; the mean gap is large,
    # so the Rice parameter is large too and varints win
    rng = np.random.default_rng(6)
    g = _normal(rng, 2000, 0.1)
    loc = g + _normal(rng, 2000, 1e-4)
    loc[100:105] += _normal(rng, 5, 1.0)
    loc[1900:1905] += _normal(rng, 5, 1.0)
    add("n2000_clustered_k10", loc, g, k=10, note="clustered, varint expected")

    # many exact zeros: ties among zeros, zero-scale blocks
    rng = np.random.default_rng(7)
    g = _normal(rng, 2000)
    loc = g.copy()
    loc[::7] += _normal(rng, loc[::7].size)
    add("n2000_zeros_ppm500000_block64", loc, g, ppm=500_000, mode=QuantMode.BLOCK,
        block_size=64, note="exact zeros, zero-scale blocks")

    rng = np.random.default_rng(8)
    add("n2000_residual_ppm50000_block16", _normal(rng, 2000), _normal(rng, 2000),
        _normal(rng, 2000, 0.05), ppm=50_000, mode=QuantMode.BLOCK, block_size=16,
        note="nonzero residual in")

    rng = np.random.default_rng(9)
    add("n1000_no_feedback_ppm20000", _normal(rng, 1000), _normal(rng, 1000),
        _normal(rng, 1000, 0.05), ppm=20_000, error_feedback=False,
        note="residual_in ignored, residual_out zero")

    add("n64_all_zero_k8", np.zeros(64, np.float32), np.zeros(64, np.float32), k=8,
        note="scale 0")

    # subnormal magnitudes: scale underflows to 0 for the smallest block
    sub = np.array([1, 2, 63, 64, 100, 190, 200, 3, 5e3, 7e5, 1, 0, 2, 2, 9, 126],
                   np.float64) * 2.0**-149
    add("n16_subnormal_block4", sub.astype(np.float32), np.zeros(16, np.float32), k=16,
        mode=QuantMode.BLOCK, block_size=4, note="subnormal scales and underflow")

    # values spanning the float range, rounding of .5 quotients
    rng = np.random.default_rng(10)
    wide = (rng.standard_normal(256) * np.exp2(rng.integers(-60, 60, 256))).astype(np.float32)
    wide[:8] = np.array([127, 63.5, -62.5, 0.5, -1.5, 2.5, 1e38, -3e38], np.float32)
    add("n256_wide_ppm250000", wide, np.zeros(256, np.float32), ppm=250_000)

    rng = np.random.default_rng(11)
    add("n4096_ppm2000", _normal(rng, 4096, 0.01), _normal(rng, 4096, 0.01), ppm=2000,
        note="0.1% of a larger head")
    return cases


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(a.astype("<f4").tobytes()).hexdigest()


def _hex_f32(a: np.ndarray) -> list[str]:
    return [f"{b:08x}" for b in a.astype(np.float32).view(np.uint32).tolist()]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for c in _cases():
        n = c["local"].size
        residual = c["residual"]
        res = tw.compress(c["local"], c["global_"], residual, k=c["k"], mode=c["mode"],
                          block_size=c["block_size"], error_feedback=c["error_feedback"])
        payload = pl.encode(res.delta)
        sizes = pl.section_sizes(res.delta)
        blob = [c["local"], c["global_"]] + ([residual] if residual is not None else [])
        (OUT / f"{c['name']}.bin").write_bytes(b"".join(a.astype("<f4").tobytes() for a in blob))
        manifest.append({
            "name": c["name"],
            "note": c["note"],
            "n": n,
            "k": c["k"],
            "ppm": c["ppm"],
            "mode": int(c["mode"]),
            "block_size": c["block_size"],
            "error_feedback": c["error_feedback"],
            "has_residual": residual is not None,
            "indices": res.delta.indices.tolist(),
            "values": res.delta.values.tolist(),
            "scales_hex": _hex_f32(res.delta.scales),
            "acc_sha256": _sha(res.acc),
            "residual_sha256": _sha(res.residual),
            "index_format": pl.IndexFormat(payload[3] & 0x03).name.lower(),
            "section_sizes": {f.name.lower(): s for f, s in sizes.items()},
            "payload_len": len(payload),
            "dense_f32_len": 4 * n,
            "payload_hex": payload.hex(),
        })
    (OUT / "manifest.json").write_text(json.dumps({"version": 1, "cases": manifest}, indent=1)
                                       + "\n")


if __name__ == "__main__":
    main()
