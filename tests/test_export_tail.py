"""`fltiny export --train-convs N`: the float tail. har-tiny's backbone ends at conv0 (int8
[64, 8]) and the head holds conv1 + pooling + dense 16-16-6 in float32 (1030 params); the
bundle is still verified against TFLM and the generated C, the int8-vs-float check runs the
new split, and the device C (generated head header, HostRound) runs the tail like Keras."""

from __future__ import annotations

import ctypes as ct
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fltiny.export.bundle import read_bundle
from fltiny.native.build import RUNTIME_DIR, runtime_sources

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tail_bundle(har_tiny_trained: Path, tmp_path_factory) -> Path:
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    out = tmp_path_factory.mktemp("har-tiny-tail")
    for name in ("model.keras", "training.json"):
        (out / name).write_bytes((har_tiny_trained / name).read_bytes())
    export_bundle(out=out, model_name="har-tiny", dataset="hapt", train_convs=1,
                  train_config=TrainConfig(epochs=5))
    return out


@pytest.fixture(scope="module")
def dense_bundle(har_tiny_trained: Path, tmp_path_factory) -> Path:
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    out = tmp_path_factory.mktemp("har-tiny-dense")
    for name in ("model.keras", "training.json"):
        (out / name).write_bytes((har_tiny_trained / name).read_bytes())
    export_bundle(out=out, model_name="har-tiny", dataset="hapt", train_convs=0,
                  train_config=TrainConfig(epochs=5))
    return out


def test_tail_manifest_and_checks(tail_bundle: Path):
    m = json.loads((tail_bundle / "manifest.json").read_text())
    assert m["backbone"]["output"]["shape"] == [1, 64, 8]
    assert m["backbone"]["feature_layer"] == "conv0"
    assert m["head"]["params"] == 1030 == 16 * 5 * 8 + 16 + 16 * 16 + 16 + 16 * 6 + 6
    layers = m["head"]["layers"]
    assert layers[0] == {"n_in": 512, "n_out": 512, "activation": "relu", "kind": "conv1d",
                         "in_ch": 8, "out_ch": 16, "kernel": 5, "stride": 2, "pad_left": 1}
    assert layers[1]["kind"] == "gap1d" and layers[1]["n_out"] == 16
    assert [ly.get("kind", "dense") for ly in layers[2:]] == ["dense", "dense"]
    checks = m["checks"]
    assert checks["tflm_vs_litert"]["max_lsb"] <= 2
    assert checks["c_vs_tflm"]["mismatches"] == 0
    assert checks["int8_vs_float"]["agreement"] > 0.95
    assert (tail_bundle / "head.bin").stat().st_size == 4 * 1030


def test_tail_params_are_keras_weights_in_device_order(tail_bundle: Path):
    from fltiny.export.pipeline import load_keras_file

    _, head, _ = read_bundle(tail_bundle)
    model = load_keras_file(tail_bundle / "model.keras")
    k, b = model.get_layer("conv1").get_weights()  # [kernel][in][out]
    parts = [k.transpose(2, 0, 1).reshape(-1), b]
    for name in ("head_0", "head_1"):
        w, bias = model.get_layer(name).get_weights()
        parts += [w.T.reshape(-1), bias]
    np.testing.assert_array_equal(head.params, np.concatenate(parts).astype(np.float32))


def test_train_convs_0_is_the_dense_head_as_before(dense_bundle: Path):
    m = json.loads((dense_bundle / "manifest.json").read_text())
    assert m["head"]["params"] == 374
    assert m["head"]["layers"] == [{"n_in": 16, "n_out": 16, "activation": "relu"},
                                   {"n_in": 16, "n_out": 6, "activation": "none"}]
    assert m["head"]["order"] == "per layer: W row-major [out][in], then b[out]; float32 little-endian"
    assert m["backbone"]["output"]["shape"] == [1, 16]
    assert "FLT_HEAD_HAS_GEOMETRY" not in (dense_bundle / "include" / "head_init.h").read_text()


def _keras_tail_outputs(bundle: Path, feats: np.ndarray) -> np.ndarray:
    """Keras's float conv1 -> pool -> head_0 -> head_1 on given conv0 activations."""
    from fltiny.export.pipeline import load_keras_file
    from fltiny.tf import keras

    model = load_keras_file(bundle / "model.keras")
    inp = keras.Input((64, 8))
    x = inp
    for name in ("conv1", "pool", "head_0", "head_1"):
        x = model.get_layer(name)(x)
    return np.asarray(keras.Model(inp, x).predict(feats, verbose=0))


def test_c_tail_forward_equals_keras_on_the_backbone_features(tail_bundle: Path):
    """The int8 backbone (generated C via HostRound) gives conv0 activations; on those, the
    device's C head forward equals Keras's float tail to ~1e-5, and so does Head.forward."""
    from fltiny.data import load_dataset
    from fltiny.devices.data import quantize_windows
    from fltiny.devices.replay import HostRound

    hr = HostRound(tail_bundle)
    hold = load_dataset("hapt").holdout()
    q = quantize_windows(hold.x[:40], hr.manifest)
    feats_q = hr.backbone(q)
    assert feats_q.shape == (40, 512)
    feats = ((feats_q.astype(np.int32) - hr.feature_zero_point).astype(np.float32)
             * np.float32(hr.feature_scale))
    want = _keras_tail_outputs(tail_bundle, feats.reshape(40, 64, 8))
    fwd = hr.lib.flt_dense_forward
    fwd.restype = ct.c_int
    fwd.argtypes = [ct.c_void_p] * 4 + [ct.c_uint32]
    acts = np.zeros(hr.head.n_acts, np.float32)
    got = []
    for f in np.ascontiguousarray(feats):
        assert fwd(ct.addressof(hr._head), hr.head.params.ctypes.data, f.ctypes.data,
                   acts.ctypes.data, len(acts)) == 0
        got.append(acts[-6:].copy())
    tol = 1e-5 * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(hr.head.forward(feats), want, rtol=1e-5, atol=tol)


def test_host_round_trains_the_tail(tail_bundle: Path):
    from fltiny.bridge.messages import Train
    from fltiny.data import load_dataset
    from fltiny.devices.data import DataBlob, quantize_windows
    from fltiny.devices.replay import HostRound
    from fltiny.export.bundle import Bundle

    hr = HostRound(tail_bundle)
    part = load_dataset("hapt").factory()
    q = quantize_windows(part.x[:40], hr.manifest)
    inp = hr.manifest.backbone["input"]
    blob = DataBlob(3, q, part.y[:40].astype(np.int32), None, float(inp["scale"]),
                    int(inp["zero_point"]), Bundle.load(tail_bundle).model_hash, n_test=8)
    _, head, _ = read_bundle(tail_bundle)
    train = Train(round=1, epochs=2, batch_size=8, learning_rate=0.01, topk_fraction=0.1)
    out = hr.run(head.params, blob, train)
    assert out.examples == 32 and np.isfinite(out.mean_loss) and out.personal_n == 8
    changed = np.flatnonzero(out.params != head.params)
    assert changed.min() < 656  # the conv's weights train too, not only the dense head
    again = hr.run(head.params, blob, train)
    assert again.payload == out.payload  # deterministic replay


def test_generated_head_header_describes_the_tail(tail_bundle: Path, tmp_path: Path):
    """head_init.h + firmware/app/flt_app_head.h compile under the strict flags and give a
    head that flt_head_check accepts, with the sizes of the contract."""
    src = tmp_path / "head_check.c"
    src.write_text(
        '#include <stdio.h>\n#include "head_init.h"\n#define FLT_APP_LOSS FLT_LOSS_SOFTMAX_CE\n'
        '#include "flt_app_head.h"\n'
        "int main(void) {\n"
        "  flt_head_t h = flt_app_head(); flt_train_sizes_t s;\n"
        "  int st = (int)flt_train_sizes(&h, 0u, &s);\n"
        '  printf("%d %u %u %u %u %u %u\\n", st, (unsigned)s.n_params, (unsigned)s.n_acts,\n'
        "         (unsigned)s.max_width, (unsigned)s.work_floats, (unsigned)h.layers[0].kind,\n"
        "         (unsigned)h.layers[0].pad_left);\n"
        "  return !(FLT_HEAD_ACTS == s.n_acts && FLT_HEAD_MAXW == s.max_width);\n}\n")
    exe = tmp_path / "head_check"
    app = Path(__file__).resolve().parents[1] / "firmware" / "app"
    cmd = ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wconversion",
           "-Wshadow", "-ffp-contract=off", f"-I{tail_bundle / 'include'}", f"-I{app}",
           f"-I{RUNTIME_DIR}", str(src), *map(str, runtime_sources(["train"])), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    line = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert line == ["0", "1030", "550", "512", "2604", "1", "1"]


def test_cli_train_convs_errors(cli, har_tiny_trained: Path, tmp_path: Path):
    code, _, err = cli("export", "--model", "har-tiny", "--train-convs", "-1", "--out", tmp_path)
    assert code == 2 and "--train-convs" in err
    out = tmp_path / "b"
    out.mkdir()
    for name in ("model.keras", "training.json"):
        (out / name).write_bytes((har_tiny_trained / name).read_bytes())
    code, _, err = cli("export", "--model", "har-tiny", "--dataset", "hapt", "--epochs", "5",
                       "--train-convs", "3", "--out", out)
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: the model has 2 Conv1D layer(s), fewer than --train-convs 3; "
                      "give --train-convs 0 to 2"]
