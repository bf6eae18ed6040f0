"""Write the shared C/Python vectors of the train component to tests/vectors/train/.

Deterministic: the same numpy twin and this script give byte-identical files (checked by
tests/test_train_vectors.py). Every float32 is stored as its IEEE bit pattern, 8 hex digits,
so the files are exact and small. Files:

* ``rng.json``     - PCG32 outputs, bounded draws, a shuffle and epoch orders for some seeds;
* ``math.json``    - flt_expf / flt_logf / flt_sqrtf on a grid (inputs and outputs as bits);
* ``head_<name>.json`` - a head, its data, initial and global params, a training config, and
  the expected params / velocity / losses after 1 step, and after all steps of train_epochs.

Usage: ``python tests/vectors/make_train_vectors.py [OUT_DIR]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the oracles
from oracles import train as tw  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "train"


def hexbits(a) -> list[str]:
    return [f"{v:08x}" for v in np.asarray(a, dtype=np.float32).ravel().view(np.uint32).tolist()]


def rng_vectors() -> dict:
    seqs = []
    for seed, stream in [(42, 54), (0, tw.TRAIN_RNG_STREAM), (2**64 - 1, tw.TRAIN_RNG_STREAM)]:
        r = tw.Pcg32(seed, stream)
        seqs.append({"seed": seed, "stream": stream, "u32": [r.next_u32() for _ in range(64)]})
    r = tw.Pcg32(7, 3)
    bounds = [1, 2, 3, 7, 10, 1000, 2**31 + 1, 2**32 - 1]
    bounded = [{"bound": b, "values": [r.bounded(b) for _ in range(8)]} for b in bounds]
    r = tw.Pcg32(99, tw.TRAIN_RNG_STREAM)
    a = np.arange(20, dtype=np.uint32)
    r.shuffle(a)
    orders = tw.epoch_orders(13, 3, seed=2024)
    return {"sequences": seqs, "bounded": {"seed": 7, "stream": 3, "draws": bounded},
            "shuffle": {"seed": 99, "stream": tw.TRAIN_RNG_STREAM, "n": 20, "result": a.tolist()},
            "epoch_orders": {"seed": 2024, "n": 13, "epochs": 3,
                             "orders": [o.tolist() for o in orders]}}


def math_vectors() -> dict:
    ex = np.concatenate([np.linspace(-104, 89, 401, dtype=np.float32),
                         np.array([0.0, -0.0, 1.0, -1.0, 1e-30, -88.0, 88.72283], np.float32)])
    lx = np.concatenate([np.logspace(-45, 38, 401).astype(np.float32),
                         np.array([1.0, 2.0, 0.5, 1.0000001, 0.9999999, 1e-40], np.float32)])
    sx = np.concatenate([lx, np.array([0.0, 4.0, 2.0], np.float32)])
    return {"expf": {"x": hexbits(ex), "y": hexbits(tw.expf(ex))},
            "logf": {"x": hexbits(lx), "y": hexbits(tw.logf(lx))},
            "sqrtf": {"x": hexbits(sx), "y": hexbits(tw.sqrtf(sx))}}


def head_json(head: tw.HeadSpec) -> dict:
    return {"loss": head.loss.name,
            "layers": [[ly.in_size, ly.out_size, ly.act.name] for ly in head.layers]}


def init_params(head: tw.HeadSpec, rng: np.random.Generator) -> np.ndarray:
    parts = []
    for ly in head.layers:
        lim = np.sqrt(6.0 / ly.in_size)
        parts += [rng.uniform(-lim, lim, ly.in_size * ly.out_size), rng.normal(0, 0.1, ly.out_size)]
    return np.concatenate(parts).astype(np.float32)


def training_vectors(name: str, head: tw.HeadSpec, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = 40
    x = rng.normal(0, 1, (n, head.n_inputs)).astype(np.float32)
    data: dict = {}
    if head.loss == tw.Loss.SOFTMAX_CE:
        data["labels"] = rng.integers(0, head.n_outputs, n).astype(np.int32)
    else:
        data["targets"] = np.tanh(x[:, : head.n_outputs] + x[:, 1:2]).astype(np.float32)
    params = init_params(head, rng)
    gparams = (params + rng.normal(0, 0.05, params.shape)).astype(np.float32)
    cfg = tw.TrainConfig(epochs=20, batch_size=8, seed=seed,
                         sgd=tw.SgdConfig(lr=0.05, momentum=0.9, mu=0.1, clip=1.0,
                                          weight_decay=1e-4))
    first_batch = tw.batches(tw.epoch_orders(n, 1, cfg.seed)[0], cfg.batch_size)[0]
    p1, v1, loss1 = tw.train_step(head, params, gparams, np.zeros_like(params), x,
                                  idx=first_batch.tolist(), sgd=cfg.sgd, **data)
    res = tw.train_epochs(head, params, gparams, None, x, cfg=cfg, **data)
    out = {
        "name": name,
        "head": head_json(head),
        "n_samples": n,
        "features": hexbits(x),
        "params": hexbits(params),
        "global_params": hexbits(gparams),
        "cfg": {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "seed": cfg.seed,
                "sgd": {k: float(np.float32(v)) for k, v in vars(cfg.sgd).items()}},
        "step1": {"idx": first_batch.tolist(), "params": hexbits(p1), "velocity": hexbits(v1),
                  "batch_loss": hexbits([loss1])[0]},
        "final": {"steps": cfg.epochs * -(-n // cfg.batch_size), "params": hexbits(res.params),
                  "velocity": hexbits(res.velocity), "epoch_losses": hexbits(res.epoch_losses),
                  "mean_loss": hexbits([res.mean_loss])[0]},
    }
    if "labels" in data:
        out["labels"] = data["labels"].tolist()
    else:
        out["targets"] = hexbits(data["targets"])
    return out


HEADS = {
    "classification": (tw.HeadSpec.mlp([12, 10, 4]), 11),
    "regression": (tw.HeadSpec.mlp([8, 16, 16, 1], loss=tw.Loss.MSE), 12),
}


def write_all(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"rng.json": rng_vectors(), "math.json": math_vectors()}
    for name, (head, seed) in HEADS.items():
        files[f"head_{name}.json"] = training_vectors(name, head, seed)
    paths = []
    for fname, obj in files.items():
        path = out_dir / fname
        path.write_text(json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        print(f"{p} ({p.stat().st_size} bytes)")
