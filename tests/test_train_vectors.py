"""The committed vectors in tests/vectors/train/ pin both sides: the twin and the C runtime
reproduce them bit for bit, and the generator is deterministic."""

from __future__ import annotations

import ctypes as ct
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from oracles import train as tw
from test_train_cbind import CRng, c_map, c_train_epochs, c_train_step, lib, up

VEC_DIR = Path(__file__).parent / "vectors" / "train"


def load(name: str) -> dict:
    return json.loads((VEC_DIR / name).read_text())


def f32(hexes) -> np.ndarray:
    return np.array([int(h, 16) for h in hexes], dtype=np.uint32).view(np.float32)


def bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def spec(v: dict) -> tw.HeadSpec:
    h = v["head"]
    return tw.HeadSpec(tuple(tw.Layer(i, o, tw.Act[a]) for i, o, a in h["layers"]), tw.Loss[h["loss"]])


def problem(name: str):
    v = load(f"head_{name}.json")
    head = spec(v)
    x = f32(v["features"]).reshape(v["n_samples"], head.n_inputs)
    data = ({"labels": np.array(v["labels"], dtype=np.int32)} if "labels" in v
            else {"targets": f32(v["targets"]).reshape(v["n_samples"], head.n_outputs)})
    c = v["cfg"]
    cfg = tw.TrainConfig(c["epochs"], c["batch_size"], c["seed"], tw.SgdConfig(**c["sgd"]))
    return v, head, x, data, f32(v["params"]), f32(v["global_params"]), cfg


def test_generator_is_deterministic(tmp_path):
    path = Path(__file__).parent / "vectors" / "make_train_vectors.py"
    mod_spec = importlib.util.spec_from_file_location("make_train_vectors", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    written = mod.write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in VEC_DIR.glob("*.json"))
    for p in written:
        assert p.read_bytes() == (VEC_DIR / p.name).read_bytes(), p.name
    assert sum(p.stat().st_size for p in VEC_DIR.iterdir()) < 200_000


def test_rng_vectors_twin_and_c():
    v = load("rng.json")
    for s in v["sequences"]:
        py = tw.Pcg32(s["seed"], s["stream"])
        assert [py.next_u32() for _ in s["u32"]] == s["u32"]
        r = CRng()
        assert lib().flt_rng_seed(ct.byref(r), s["seed"], s["stream"]) == 0
        assert [lib().flt_rng_next_u32(ct.byref(r)) for _ in s["u32"]] == s["u32"]
    b = v["bounded"]
    py = tw.Pcg32(b["seed"], b["stream"])
    for d in b["draws"]:
        assert [py.bounded(d["bound"]) for _ in d["values"]] == d["values"]
    sh = v["shuffle"]
    a = np.arange(sh["n"], dtype=np.uint32)
    r = CRng()
    assert lib().flt_rng_seed(ct.byref(r), sh["seed"], sh["stream"]) == 0
    assert lib().flt_shuffle_u32(ct.byref(r), up(a), len(a)) == 0
    assert a.tolist() == sh["result"]
    eo = v["epoch_orders"]
    assert [o.tolist() for o in tw.epoch_orders(eo["n"], eo["epochs"], eo["seed"])] == eo["orders"]


@pytest.mark.parametrize("fn", ["expf", "logf", "sqrtf"])
def test_math_vectors_twin_and_c(fn):
    v = load("math.json")[fn]
    x, y = f32(v["x"]), f32(v["y"])
    np.testing.assert_array_equal(bits(getattr(tw, fn)(x)), bits(y))
    np.testing.assert_array_equal(bits(c_map(f"flt_{fn}", x)), bits(y))


@pytest.mark.parametrize("name", ["classification", "regression"])
def test_training_vectors_twin_and_c(name):
    v, head, x, data, params, gparams, cfg = problem(name)
    s1 = v["step1"]
    zeros = np.zeros_like(params)
    p_t, v_t, l_t = tw.train_step(head, params, gparams, zeros, x, idx=s1["idx"], sgd=cfg.sgd,
                                  **data)
    st, p_c, v_c, l_c = c_train_step(head, params, gparams, zeros, x, idx=s1["idx"], sgd=cfg.sgd,
                                     **data)
    assert st == "FLT_OK"
    for got in (p_t, p_c):
        np.testing.assert_array_equal(bits(got), bits(f32(s1["params"])))
    for got in (v_t, v_c):
        np.testing.assert_array_equal(bits(got), bits(f32(s1["velocity"])))
    assert bits([l_t]) == bits([l_c]) == bits(f32([s1["batch_loss"]]))

    fin = v["final"]
    res = tw.train_epochs(head, params, gparams, None, x, cfg=cfg, **data)
    st, p_c, v_c, mean_c, losses_c = c_train_epochs(head, params, gparams, None, x, cfg=cfg,
                                                    **data)
    assert st == "FLT_OK"
    for got in (res.params, p_c):
        np.testing.assert_array_equal(bits(got), bits(f32(fin["params"])))
    for got in (res.velocity, v_c):
        np.testing.assert_array_equal(bits(got), bits(f32(fin["velocity"])))
    for got in (res.epoch_losses, losses_c):
        np.testing.assert_array_equal(bits(got), bits(f32(fin["epoch_losses"])))
    assert bits([mean_c]) == bits(f32([fin["mean_loss"]]))
