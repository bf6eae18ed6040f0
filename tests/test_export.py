"""`fltiny export` end to end against the real converter and the real TFLM interpreter."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fltiny.export.bundle import read_bundle
from fltiny.export.pipeline import parse_size

pytestmark = pytest.mark.slow


def test_bundle_contents(har_tiny_bundle: Path):
    out = har_tiny_bundle
    manifest = json.loads((out / "manifest.json").read_text())
    for rel, digest in manifest["artifacts"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    assert {"backbone.tflite", "head.bin", "include/backbone_tflite.h",
            "include/head_init.h"} <= set(manifest["artifacts"])
    bb = manifest["backbone"]
    assert bb["input"]["dtype"] == "int8" and bb["output"]["dtype"] == "int8"
    assert bb["input"]["shape"] == [1, 128, 3]
    assert set(bb["ops"]) <= {"CONV_2D", "RESHAPE", "MEAN", "EXPAND_DIMS", "FULLY_CONNECTED"}
    bb_out = bb["output"]["shape"]
    assert bb_out[-2:] == [64, 8] and bb_out[0] == 1  # har-tiny's tail: the backbone ends at conv0
    # the float tail: conv1 (16 x 5 x 8 + 16), pooling, dense 16-16 and 16-6
    assert manifest["head"]["params"] == 16 * 5 * 8 + 16 + 16 * 16 + 16 + 16 * 6 + 6
    assert manifest["fltiny_version"]
    assert len(manifest["normalization"]["mean"]) == 3
    checks = manifest["checks"]
    assert checks["tflm_vs_litert"]["max_lsb"] <= 2
    assert checks["int8_vs_float"]["agreement"] > 0.95
    assert checks["total_bytes"] <= 32 * 1024


def test_head_bin_matches_keras_weights(har_tiny_bundle: Path):
    from fltiny.export.pipeline import load_keras_file

    manifest, head, backbone = read_bundle(har_tiny_bundle)
    model = load_keras_file(har_tiny_bundle / "model.keras")
    # device order: conv1 W [out][k][in] (Keras [k][in][out]) and b, then each dense W [out][in]
    kernel, bias = model.get_layer("conv1").get_weights()
    conv = np.transpose(kernel, (2, 0, 1)).reshape(-1)
    np.testing.assert_array_equal(head.params[: conv.size], conv)
    np.testing.assert_array_equal(head.params[conv.size : conv.size + bias.size], bias)
    o = conv.size + bias.size
    kernel, bias = model.get_layer("head_0").get_weights()
    np.testing.assert_array_equal(head.params[o : o + kernel.size], kernel.T.reshape(-1))
    np.testing.assert_array_equal(head.params[o + kernel.size : o + kernel.size + bias.size], bias)
    assert backbone is not None and backbone[4:8] == b"TFL3"


def test_headers_compile_and_hold_the_bundle(har_tiny_bundle: Path, tmp_path: Path):
    """The generated headers compile with -Werror and carry exactly the bundle's bytes."""
    src = tmp_path / "check.c"
    src.write_text(
        '#include <stdio.h>\n#include "backbone_tflite.h"\n#include "head_init.h"\n'
        "int main(void) {\n"
        "  unsigned long sum = 0; unsigned i;\n"
        "  for (i = 0; i < FLT_BACKBONE_TFLITE_BYTES; i++) sum += flt_backbone_tflite[i];\n"
        '  printf("%u %lu %u %u\\n", (unsigned)FLT_BACKBONE_TFLITE_BYTES, sum,\n'
        "         (unsigned)FLT_HEAD_PARAMS, (unsigned)((unsigned long)flt_backbone_tflite % 16));\n"
        "  for (i = 0; i < FLT_HEAD_PARAMS; i++) printf(\"%a\\n\", (double)flt_head_init[i]);\n"
        "  return 0;\n}\n"
    )
    exe = tmp_path / "check"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-const-variable",
                    f"-I{har_tiny_bundle / 'include'}", str(src), "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    tflite = (har_tiny_bundle / "backbone.tflite").read_bytes()
    assert int(lines[0]) == len(tflite) and int(lines[1]) == sum(tflite)
    assert int(lines[3]) == 0  # 16-byte aligned
    _, head, _ = read_bundle(har_tiny_bundle)
    values = np.array([float.fromhex(v) for v in lines[4:]], dtype=np.float32)
    np.testing.assert_array_equal(values, head.params)


def test_cli_export_prints_size_and_agreement(cli, har_tiny_trained: Path):
    code, out, err = cli("export", "--model", "har-tiny", "--dataset", "hapt", "--epochs", "5",
                         "--out", har_tiny_trained)
    assert code == 0, err
    assert "reusing the trained model" in err
    assert "size:" in out and "int8 vs float:" in out and "TFLM vs LiteRT:" in out


def test_whole_model_head_export(tmp_path: Path, cli):
    code, out, err = cli("export", "--model", "thermo-tiny", "--epochs", "2", "--out", tmp_path)
    assert code == 0, err
    manifest, head, backbone = read_bundle(tmp_path)
    assert backbone is None and manifest.backbone is None
    assert [lyr.n_out for lyr in head.layers] == [16, 8, 1]
    assert "MAE float" in out


def test_own_keras_model_with_representative_data(tmp_path: Path, cli):
    from fltiny.tf import keras

    inp = keras.Input((20,))
    x = keras.layers.Dense(12, activation="relu")(inp)
    x = keras.layers.Dense(8, activation="relu")(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.save(tmp_path / "mine.keras")
    rep = np.random.default_rng(0).normal(size=(64, 20)).astype(np.float32)
    np.save(tmp_path / "rep.npy", rep)
    code, stdout, err = cli("export", "--keras", tmp_path / "mine.keras", "--rep-data",
                            tmp_path / "rep.npy", "--head-layers", "1", "--out", tmp_path / "b")
    assert code == 0, err
    manifest, head, _ = read_bundle(tmp_path / "b")
    assert [lyr.n_out for lyr in head.layers] == [3]
    assert manifest.backbone["output"]["shape"] == [1, 8]


def _make_bad_inputs(tmp: Path) -> dict[str, tuple[list, str]]:
    from fltiny.tf import keras

    (tmp / "notkeras.keras").write_text("hello")
    inp = keras.Input((10,))
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.Dense(4)(inp))).save(tmp / "ok.keras")
    np.save(tmp / "wrong.npy", np.zeros((5, 7), np.float32))
    np.save(tmp / "empty.npy", np.zeros((0, 10), np.float32))
    np.save(tmp / "good.npy", np.zeros((5, 10), np.float32))
    (tmp / "afile").write_text("")
    inp = keras.Input((16,))
    h = keras.layers.Dense(8, activation="tanh")(inp)
    keras.Model(inp, keras.layers.Dense(2)(h)).save(tmp / "tanh.keras")
    own = ["--keras", tmp / "ok.keras", "--head-layers", "1"]
    return {
        "not-keras": (["--keras", tmp / "notkeras.keras", "--rep-data", tmp / "good.npy"],
                      "is not a Keras model file"),
        "missing-model": (["--keras", tmp / "nope.keras", "--rep-data", tmp / "good.npy"],
                          "does not exist"),
        "rep-wrong-shape": ([*own, "--rep-data", tmp / "wrong.npy"],
                            "representative data has sample shape (7,), the model expects (10,)"),
        "rep-empty": ([*own, "--rep-data", tmp / "empty.npy"], "is empty"),
        "rep-not-npy": ([*own, "--rep-data", tmp / "afile"], "is not a .npy array"),
        "wrong-dataset-shape": ([*own, "--dataset", "thermostat"], "sample shape (8,)"),
        "unwritable-out": ([*own, "--rep-data", tmp / "good.npy", "--out-override",
                            tmp / "afile" / "sub"], "cannot write to output directory"),
        "oversize": (["--model", "har-tiny", "--epochs", "1", "--max-size", "1kB"],
                     "over the size budget of 1024 bytes. Largest: "),
        "bad-size": ([*own, "--rep-data", tmp / "good.npy", "--max-size", "lots"],
                     "cannot read size 'lots'"),
        "unsupported-op": (["--keras", tmp / "tanh.keras", "--rep-data", tmp / "good16.npy",
                            "--head-layers", "1"], "unsupported ops in the backbone: TANH"),
        "both-sources": (["--model", "har-tiny", *own], "exactly one of --model"),
    }


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    np.save(tmp / "good16.npy", np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32))
    return tmp, _make_bad_inputs(tmp)


@pytest.mark.parametrize("case", [
    "not-keras", "missing-model", "rep-wrong-shape", "rep-empty", "rep-not-npy",
    "wrong-dataset-shape", "unwritable-out", "oversize", "bad-size", "unsupported-op",
    "both-sources",
])
def test_bad_input_is_one_line_error(cli, bad_inputs, case):
    tmp, cases = bad_inputs
    args, message = cases[case]
    out = tmp / f"out-{case}"
    if "--out-override" in args:
        i = args.index("--out-override")
        out = args[i + 1]
        args = args[:i] + args[i + 2 :]
    code, stdout, err = cli("export", *args, "--out", out)
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err + stdout


def test_parse_size():
    assert parse_size("200kB") == 204800
    assert parse_size("64k") == 65536
    assert parse_size("1000") == 1000
    assert parse_size("0.5MB") == 524288
