"""End-to-end oracle of one device round: TFLM (the ``tflite_micro`` interpreter) runs the
int8 backbone, the numpy oracles (tests/oracles) dequantize the features, train the head,
compress and encode the delta, and the result must be the payload and loss bits of
``flt_round_run`` (the device's C, through HostRound). Nothing here is derived from the C:
each step follows firmware/app/flt_round.h's contract with an independent implementation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from oracles import delta as od
from oracles import payload as opl
from oracles import train as ot

from fltiny.devices.data import fleet_blobs
from fltiny.devices.replay import DeviceState, HostRound
from fltiny.export.bundle import read_bundle
from fltiny.native.messages import TRAIN_DRIFT, TRAIN_PERSONAL, TRAIN_SELECT, Train

pytestmark = pytest.mark.slow
F32 = np.float32


def tflm_features(backbone: bytes, windows: np.ndarray) -> np.ndarray:
    """int8 backbone outputs of each int8 window, by the TFLM interpreter."""
    from tflite_micro import runtime

    from fltiny.export.verify import TFLM_ARENA_BYTES

    interp = runtime.Interpreter.from_bytes(backbone, arena_size=TFLM_ARENA_BYTES)
    shape = [int(d) for d in interp.get_input_details(0)["shape"]]
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


def _features(backbone: bytes, feat: dict, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = tflm_features(backbone, windows)
    x = (q.astype(np.int32) - int(feat["zero_point"])).astype(F32) * F32(feat["scale"])
    return q, x


def oracle_personal(spec: ot.HeadSpec, served: np.ndarray, x: np.ndarray, labels, targets):
    """Step 1: accuracy (first maximum) or MAE (sequential float32 sum) of the served model."""
    outs = [ot.dense_forward(spec, served, xi)[-1] for xi in x]
    if labels is not None:
        correct = sum(int(np.argmax(y) == lab) for y, lab in zip(outs, labels, strict=True))
        return F32(F32(correct) / F32(len(x)))
    total = F32(0.0)
    for y, t in zip(outs, targets, strict=True):
        for d in (y - np.asarray(t, F32)).astype(F32):
            total = F32(total + abs(d))
    return F32(total / F32(F32(len(x)) * F32(spec.n_outputs)))


def oracle_round(bundle, global_params, blob, train, state):
    """(payload, loss, personal metric, new residual, new drift, backbone q of the windows,
    served next: the local params, None for the global model, or state.served unchanged,
    training windows used)."""
    manifest, head, backbone = read_bundle(bundle)
    q, x = _features(backbone, manifest.backbone["output"], blob.windows)
    n_train = blob.n_train
    spec = ot.HeadSpec(
        tuple(ot.Layer(ly.n_in, ly.n_out, ot.Act.RELU if ly.activation == "relu" else ot.Act.NONE)
              for ly in head.layers),
        ot.Loss.SOFTMAX_CE if manifest.task == "classification" else ot.Loss.MSE)
    served = global_params if state.served is None else state.served
    lab, tgt = blob.labels, blob.targets
    personal = (oracle_personal(spec, served, x[n_train:], None if lab is None else lab[n_train:],
                                None if tgt is None else tgt[n_train:])
                if blob.n_test else F32(0.0))
    mu = F32(train.prox_mu)
    drifting = bool(train.flags & TRAIN_DRIFT)
    anchor = (global_params + state.drift / mu).astype(F32) if drifting else global_params
    cfg = ot.TrainConfig(train.epochs, train.batch_size, train.seed,
                         ot.SgdConfig(train.learning_rate, train.momentum, train.prox_mu,
                                      train.clip, 0.0))
    # SELECT: the last quarter of the training windows validates, the rest trains (step 6)
    n_fit = n_train - (n_train // 4 if train.flags & TRAIN_SELECT else 0)
    res = ot.train_epochs(spec, global_params, anchor, None, x[:n_fit],
                          labels=None if lab is None else lab[:n_fit],
                          targets=None if tgt is None else tgt[:n_fit], cfg=cfg)
    drift = (mu * (anchor - res.params)).astype(F32) if drifting else state.drift
    bits = (train.flags >> 8) & 0xF  # TRAIN flags bits 8-11: the value width (0: 8)
    comp = od.compress(res.params, global_params, state.residual,
                       k=oracle_k(spec.n_params, train), qmax=od.qmax_of_bits(bits or 8))
    served_next = state.served
    if train.flags & TRAIN_PERSONAL:
        served_next = res.params
        if n_fit < n_train:
            val = slice(n_fit, n_train)

            def score(params):
                return oracle_personal(spec, params, x[val],
                                       None if lab is None else lab[val],
                                       None if tgt is None else tgt[val])
            local, glob = score(res.params), score(global_params)
            better = local >= glob if lab is not None else local <= glob
            served_next = res.params if better else None
    return (opl.encode(comp.delta), F32(res.mean_loss), personal, comp.residual, drift, q,
            served_next, n_fit)


@pytest.fixture(scope="module")
def digits_tiny_bundle(tmp_path_factory):
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle, train_zoo_model

    out = tmp_path_factory.mktemp("digits-tiny")
    train_zoo_model("digits-tiny", "digits", out, TrainConfig(epochs=2), lambda _m: None)
    export_bundle(out=out, model_name="digits-tiny", dataset="digits",
                  train_config=TrainConfig(epochs=2))
    return out


# har-tiny head-only (--train-convs 0): the float32 training oracle (tests/oracles/train.py) is
# bit-exact for dense layers; the float tail's conv1d/gap1d layers are pinned by
# tests/test_train_conv.py (C against tests/oracles/conv_tail.py, finite differences, Keras)
# and their rounds by tests/test_export_tail.py (host round = replay).
CASES = [
    # a first round: global served, no drift state
    ("har-tiny-head", 0), ("digits-tiny", 0),
    # a later round of a personalizing FedDyn device: its own served model and drift state,
    # 4-bit values (TRAIN flags bits 8-11) on one model
    ("har-tiny-head", TRAIN_DRIFT | TRAIN_PERSONAL | 4 << 8),
    ("digits-tiny", TRAIN_DRIFT | TRAIN_PERSONAL),
    # serving chosen on a validation split (the last quarter of the training windows)
    ("har-tiny-head", TRAIN_DRIFT | TRAIN_PERSONAL | TRAIN_SELECT),
    ("digits-tiny", TRAIN_PERSONAL | TRAIN_SELECT),
]


def _bits(a) -> bytes:
    return np.asarray(a, F32).tobytes()


@pytest.mark.parametrize("model,flags", CASES, ids=[f"{m}-{f}" for m, f in CASES])
def test_device_round_equals_tflm_plus_oracles(model, flags, request):
    bundle = request.getfixturevalue(model.replace("-", "_") + "_bundle")
    host = HostRound(bundle)
    blob = fleet_blobs(bundle, 2, max_windows=60, seed=5)[1]
    if blob.windows.ndim == 4:  # images [count, h, w, c]: the blob stores [count, h, w * c]
        blob = replace(blob, windows=blob.windows.reshape(len(blob.windows), blob.windows.shape[1], -1))
    assert blob.n_test > 0 and blob.n_train > 0
    rng = np.random.default_rng(11)
    P = host.n_params
    global_params = (host.head.params * F32(1.01)).astype(F32)
    state = DeviceState((rng.standard_normal(P) * 1e-3).astype(F32), np.zeros(P, F32))
    if flags:
        state = DeviceState(state.residual, (rng.standard_normal(P) * 1e-4).astype(F32),
                            (global_params + rng.standard_normal(P).astype(F32) * F32(0.01))
                            .astype(F32))
    train = Train(round=2, epochs=2, batch_size=8, learning_rate=0.02, momentum=0.9,
                  prox_mu=0.01, clip=5.0, topk_fraction=0.1, seed=1234, flags=flags)

    c = host.run(global_params, blob, train, state)
    payload, loss, personal, residual, drift, q, served, n_fit = oracle_round(
        bundle, global_params, blob, train, state)

    assert np.array_equal(host.backbone(blob.windows), q)  # the C backbone is TFLM's, bit for bit
    assert c.payload == payload
    assert _bits(c.mean_loss) == _bits(loss)
    assert (c.examples, c.personal_n) == (n_fit, blob.n_test)
    assert (c.state.served is None) == (served is None)
    if served is not None:
        assert _bits(c.state.served) == _bits(served)
    assert _bits(c.personal_metric) == _bits(personal)
    assert _bits(c.state.residual) == _bits(residual)
    assert _bits(c.state.drift) == _bits(drift)
    # and the comparison discriminates: another shuffle seed is another payload
    other = oracle_round(bundle, global_params, blob, Train(**{**vars(train), "seed": 1235}),
                         state)[0]
    assert other != c.payload
