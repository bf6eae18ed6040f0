"""End-to-end oracle of one device round: TFLM (the ``tflite_micro`` interpreter) runs the
int8 backbone, the numpy oracles (tests/oracles) dequantize the features, train the head,
compress and encode the delta, and the result must be the payload and loss bits of
``flt_round_run`` (the device's C, through HostRound). Nothing here is derived from the C:
each step follows firmware/app/flt_round.h's contract with an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import delta as od
from oracles import payload as opl
from oracles import train as ot

from fltiny.devices.data import fleet_blobs
from fltiny.devices.replay import HostRound
from fltiny.export.bundle import read_bundle
from fltiny.native.messages import Train

pytestmark = pytest.mark.slow
F32 = np.float32


def tflm_features(backbone: bytes, windows: np.ndarray) -> np.ndarray:
    """int8 backbone outputs of each int8 window, by the TFLM interpreter."""
    from tflite_micro import runtime

    from fltiny.export.verify import TFLM_ARENA_BYTES

    interp = runtime.Interpreter.from_bytes(backbone, arena_size=TFLM_ARENA_BYTES)
    shape = [1, *windows.shape[1:]]
    out = []
    for w in windows:
        interp.set_input(np.ascontiguousarray(w, dtype=np.int8).reshape(shape), 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0), dtype=np.int8).reshape(-1))
    return np.stack(out)


def oracle_k(n: int, train: Train) -> int:
    """flt_round_k: ppm = (uint32)(fraction * 1e6f + 0.5f) in float32, then k_from_ppm."""
    if train.topk_fraction is None:
        return min(int(train.topk_count or 0), n)
    scaled = F32(F32(F32(train.topk_fraction) * F32(1e6)) + F32(0.5))
    return od.k_from_ppm(n, min(int(scaled), 1_000_000))


def oracle_round(bundle, global_params, windows, labels, targets, train, residual):
    manifest, head, backbone = read_bundle(bundle)
    feat = manifest.backbone["output"]
    q = tflm_features(backbone, windows)
    features = (q.astype(np.int32) - int(feat["zero_point"])).astype(F32) * F32(feat["scale"])
    spec = ot.HeadSpec(
        tuple(ot.Layer(ly.n_in, ly.n_out, ot.Act.RELU if ly.activation == "relu" else ot.Act.NONE)
              for ly in head.layers),
        ot.Loss.SOFTMAX_CE if manifest.task == "classification" else ot.Loss.MSE)
    cfg = ot.TrainConfig(train.epochs, train.batch_size, train.seed,
                         ot.SgdConfig(train.learning_rate, train.momentum, train.prox_mu,
                                      train.clip, 0.0))
    res = ot.train_epochs(spec, global_params, global_params, None, features, labels=labels,
                          targets=targets, cfg=cfg)
    comp = od.compress(res.params, global_params, residual, k=oracle_k(spec.n_params, train))
    return opl.encode(comp.delta), F32(res.mean_loss), comp.residual, q


@pytest.fixture(scope="module")
def digits_tiny_bundle(tmp_path_factory):
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle, train_zoo_model

    out = tmp_path_factory.mktemp("digits-tiny")
    train_zoo_model("digits-tiny", "digits", out, TrainConfig(epochs=2), lambda _m: None)
    export_bundle(out=out, model_name="digits-tiny", dataset="digits",
                  train_config=TrainConfig(epochs=2))
    return out


@pytest.mark.parametrize("model", ["har-tiny", "digits-tiny"])
def test_device_round_equals_tflm_plus_oracles(model, request):
    bundle = request.getfixturevalue(model.replace("-", "_") + "_bundle")
    host = HostRound(bundle)
    blob = fleet_blobs(bundle, 2, max_windows=48, seed=5)[1]
    rng = np.random.default_rng(11)
    global_params = (host.head.params * F32(1.01)).astype(F32)
    residual = (rng.standard_normal(host.n_params) * 1e-3).astype(F32)  # a previous round's
    train = Train(round=2, epochs=2, batch_size=8, learning_rate=0.02, momentum=0.9,
                  prox_mu=0.01, clip=5.0, topk_fraction=0.1, seed=1234)

    c = host.run(global_params, blob.windows, blob.labels, train, residual=residual,
                 targets=blob.targets)
    payload, loss, new_residual, q = oracle_round(bundle, global_params, blob.windows,
                                                  blob.labels, blob.targets, train, residual)

    assert np.array_equal(host.backbone(blob.windows), q)  # the C backbone is TFLM's, bit for bit
    assert c.payload == payload
    assert F32(c.mean_loss).tobytes() == loss.tobytes()
    assert c.examples == len(blob.windows)
    assert np.array_equal(c.residual.view(np.uint32), new_residual.view(np.uint32))
    # and the comparison discriminates: another shuffle seed is another payload
    other = oracle_round(bundle, global_params, blob.windows, blob.labels, blob.targets,
                         Train(**{**vars(train), "seed": train.seed + 1}), residual)[0]
    assert other != c.payload
