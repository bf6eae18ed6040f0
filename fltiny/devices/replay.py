"""The device's round on the host: firmware/app/flt_round.c and the generated backbone compiled
into a shared library (fltiny.native.build) and called through ctypes.

Same C, same inputs, same bytes: `HostRound(bundle).run(...)` returns the DELTA payload a board
produces for the same global parameters, local windows, TRAIN configuration and residual
(docs/boards.md "Determinism"). The on-target self-test and the device tests compare against it.
"""

from __future__ import annotations

import ctypes as C
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fltiny.boards import REPO_ROOT
from fltiny.bridge.messages import Train
from fltiny.errors import ToolchainError

APP_DIR = REPO_ROOT / "firmware" / "app"
MAX_LAYERS = 8


class _Layer(C.Structure):
    _fields_ = [("in_size", C.c_uint32), ("out_size", C.c_uint32), ("act", C.c_uint32)]


class _Head(C.Structure):
    _fields_ = [("n_layers", C.c_uint32), ("loss", C.c_uint32), ("layers", _Layer * MAX_LAYERS)]


_BACKBONE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_void_p)


class _Model(C.Structure):
    _fields_ = [("head", C.POINTER(_Head)), ("backbone", C.c_void_p), ("window_bytes", C.c_uint32),
                ("n_features", C.c_uint32), ("feature_scale", C.c_float),
                ("feature_zero_point", C.c_int32)]


class _Data(C.Structure):
    _fields_ = [("windows", C.c_void_p), ("n", C.c_uint32), ("labels", C.c_void_p),
                ("targets", C.c_void_p)]


class _Sgd(C.Structure):
    _fields_ = [("lr", C.c_float), ("momentum", C.c_float), ("mu", C.c_float), ("clip", C.c_float),
                ("weight_decay", C.c_float)]


class _TrainCfg(C.Structure):
    _fields_ = [("epochs", C.c_uint32), ("batch_size", C.c_uint32), ("seed", C.c_uint64),
                ("sgd", _Sgd)]


class _DeltaCfg(C.Structure):
    _fields_ = [("k", C.c_uint32), ("mode", C.c_int), ("block_size", C.c_uint32),
                ("error_feedback", C.c_int)]


class _Cfg(C.Structure):
    _fields_ = [("train", _TrainCfg), ("delta", _DeltaCfg)]


class _Ws(C.Structure):
    _fields_ = [("features", C.c_void_p), ("feat_q", C.c_void_p), ("params", C.c_void_p),
                ("velocity", C.c_void_p), ("work", C.c_void_p), ("work_len", C.c_uint32),
                ("order", C.c_void_p), ("indices", C.c_void_p), ("values", C.c_void_p),
                ("scales", C.c_void_p), ("k_cap", C.c_uint32)]


class _Result(C.Structure):
    _fields_ = [("mean_loss", C.c_float), ("examples", C.c_uint32), ("k", C.c_uint32),
                ("payload_len", C.c_size_t)]


@dataclass
class RoundOutput:
    payload: bytes
    mean_loss: float
    examples: int
    k: int
    residual: np.ndarray
    params: np.ndarray


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


class HostRound:
    """flt_round_run for one bundle, on the host."""

    def __init__(self, bundle: Path, workdir: Path | None = None) -> None:
        from fltiny.codegen import generate
        from fltiny.export.bundle import read_bundle
        from fltiny.native.build import build_shared_library

        self.manifest, self.head, backbone = read_bundle(Path(bundle))
        if backbone is None:
            raise ToolchainError("the bundle has no backbone")
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fltiny-replay-")
            workdir = Path(self._tmp.name)
        gen = generate(backbone, Path(workdir) / "gen", prefix="backbone")
        self.lib_path = build_shared_library(
            ["kernels", "train", "delta"],
            extra_sources=[APP_DIR / "flt_round.c", gen.source],
            include_dirs=[APP_DIR, Path(gen.header).parent], name="fltround")
        self.lib = C.CDLL(str(self.lib_path))
        self.lib.flt_round_run.restype = C.c_int
        self.lib.flt_round_k.restype = C.c_uint32
        self.lib.flt_round_k.argtypes = [C.c_uint32, C.c_uint32, C.c_uint32, C.c_float]
        self.window_bytes = gen.input_size
        self.n_features = gen.output_size
        feat = self.manifest.backbone["output"]
        self.feature_scale = float(np.float32(feat["scale"]))
        self.feature_zero_point = int(feat["zero_point"])
        h = _Head()
        h.n_layers = len(self.head.layers)
        h.loss = 0 if self.manifest.task == "classification" else 1
        for i, lyr in enumerate(self.head.layers):
            h.layers[i] = _Layer(lyr.n_in, lyr.n_out, 1 if lyr.activation == "relu" else 0)
        self._head = h
        self.n_params = self.head.n_params
        self._invoke = C.cast(self.lib.backbone_invoke, C.c_void_p).value

    def backbone(self, windows: np.ndarray) -> np.ndarray:
        """int8 features of each int8 window (the generated backbone, host build)."""
        w = np.ascontiguousarray(windows, dtype=np.int8).reshape(-1, self.window_bytes)
        out = np.zeros((w.shape[0], self.n_features), dtype=np.int8)
        fn = self.lib.backbone_invoke
        fn.restype = C.c_int
        for i in range(w.shape[0]):
            s = fn(C.c_void_p(_ptr(w[i])), C.c_void_p(_ptr(out[i])))
            if s != 0:
                raise ToolchainError(f"backbone_invoke failed with status {s}")
        return out

    def k_for(self, train: Train) -> int:
        if train.topk_fraction is not None:
            return int(self.lib.flt_round_k(self.n_params, 1, 0, float(train.topk_fraction)))
        return int(self.lib.flt_round_k(self.n_params, 0, int(train.topk_count or 0), 0.0))

    def run(self, global_params: np.ndarray, windows: np.ndarray, labels: np.ndarray | None,
            train: Train, residual: np.ndarray | None = None,
            targets: np.ndarray | None = None) -> RoundOutput:
        P = self.n_params
        g = np.ascontiguousarray(global_params, dtype=np.float32).reshape(P)
        w = np.ascontiguousarray(windows, dtype=np.int8).reshape(-1, self.window_bytes)
        n = w.shape[0]
        lab = None if labels is None else np.ascontiguousarray(labels, dtype=np.int32)
        tgt = None if targets is None else np.ascontiguousarray(targets, dtype=np.float32)
        res = np.zeros(P, np.float32) if residual is None else np.array(residual, dtype=np.float32)
        k = self.k_for(train)
        acts = sum(lyr.n_out for lyr in self.head.layers)
        maxw = max(lyr.n_out for lyr in self.head.layers)
        ws_arrays = dict(features=np.zeros(n * self.n_features, np.float32),
                         feat_q=np.zeros(self.n_features, np.int8), params=np.zeros(P, np.float32),
                         velocity=np.zeros(P, np.float32), work=np.zeros(P + acts + 2 * maxw, np.float32),
                         order=np.zeros(n, np.uint32), indices=np.zeros(P, np.uint32),
                         values=np.zeros(P, np.int8), scales=np.zeros(P, np.float32))
        ws = _Ws(**{k_: _ptr(v) for k_, v in ws_arrays.items()})
        ws.work_len = ws_arrays["work"].size
        ws.k_cap = P
        model = _Model(C.pointer(self._head), self._invoke, self.window_bytes, self.n_features,
                       self.feature_scale, self.feature_zero_point)
        data = _Data(_ptr(w), n, _ptr(lab) if lab is not None else None,
                     _ptr(tgt) if tgt is not None else None)
        cfg = _Cfg(_TrainCfg(train.epochs, train.batch_size, train.seed,
                             _Sgd(train.learning_rate, train.momentum, train.prox_mu, train.clip, 0.0)),
                   _DeltaCfg(k, 0, 0, 1))
        cap = 16 + 4 * P + (P + 7) // 8 + P
        payload = np.zeros(cap, np.uint8)
        result = _Result()
        s = self.lib.flt_round_run(C.byref(model), C.byref(data), C.c_void_p(_ptr(g)), C.byref(cfg),
                                   C.c_void_p(_ptr(res)), C.byref(ws), C.c_void_p(_ptr(payload)),
                                   C.c_size_t(cap), C.byref(result))
        if s != 0:
            raise ToolchainError(f"flt_round_run failed with status {s}")
        return RoundOutput(payload[: result.payload_len].tobytes(), float(result.mean_loss),
                           int(result.examples), int(result.k), res, ws_arrays["params"].copy())
