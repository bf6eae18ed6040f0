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
from fltiny.bridge.messages import TRAIN_PERSONAL, Train
from fltiny.devices.data import DataBlob
from fltiny.errors import ToolchainError
from fltiny.native.status import check

APP_DIR = REPO_ROOT / "firmware" / "app"
MAX_LAYERS = 8


class _Layer(C.Structure):  # flt_layer_t (firmware/runtime/train/flt_head.h)
    _fields_ = [(name, C.c_uint32) for name in (
        "in_size", "out_size", "act", "kind", "in_ch", "out_ch", "kernel", "stride", "pad_left")]


class _Head(C.Structure):
    _fields_ = [("n_layers", C.c_uint32), ("loss", C.c_uint32), ("layers", _Layer * MAX_LAYERS)]


_BACKBONE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_void_p)


class _Model(C.Structure):
    _fields_ = [("head", C.POINTER(_Head)), ("backbone", C.c_void_p), ("window_bytes", C.c_uint32),
                ("n_features", C.c_uint32), ("feature_scale", C.c_float),
                ("feature_zero_point", C.c_int32)]


class _State(C.Structure):
    _fields_ = [("served", C.c_void_p), ("residual", C.c_void_p), ("drift", C.c_void_p),
                ("ldp_key", C.c_void_p), ("ldp_nonce", C.c_uint32)]


class _Ws(C.Structure):
    _fields_ = [("feat_q", C.c_void_p), ("feat_cache", C.c_void_p), ("x", C.c_void_p),
                ("params", C.c_void_p), ("velocity", C.c_void_p), ("work", C.c_void_p),
                ("work_len", C.c_uint32), ("order", C.c_void_p),
                ("indices", C.c_void_p), ("values", C.c_void_p), ("scales", C.c_void_p),
                ("k_cap", C.c_uint32)]


class _Sizes(C.Structure):
    _fields_ = [("n_params", C.c_uint32), ("feat_cache", C.c_uint32), ("work", C.c_uint32),
                ("order", C.c_uint32), ("scales", C.c_uint32), ("payload", C.c_uint32)]


class _Result(C.Structure):
    _fields_ = [("mean_loss", C.c_float), ("flags", C.c_uint32), ("examples", C.c_uint32),
                ("k", C.c_uint32), ("payload_len", C.c_size_t), ("personal_n", C.c_uint32),
                ("personal_metric", C.c_float), ("serve_local", C.c_uint32)]


class _Check(C.Structure):
    _fields_ = [("n", C.c_uint32), ("metric", C.c_float), ("reference_metric", C.c_float),
                ("drop", C.c_float), ("failed", C.c_int32)]


@dataclass(frozen=True)
class SelfCheck:
    """The device's self-check of a GLOBAL it applied (flt_round_self_check): the personal
    metric of the new global model and of the factory head on its personal test split, the
    allowed drop, and whether the device reverts to the factory model."""

    n: int
    metric: float
    reference_metric: float
    drop: float
    failed: bool

    def per_mille(self) -> tuple[int, int, int, int]:
        """(global, factory, drop, n) as the device's ERROR text writes them."""
        def pm(v: float) -> int:
            x = np.float32(v) * np.float32(1000.0) + np.float32(0.5)
            return 0 if not x > 0 else min(int(x), 0xFFFFFFFF)

        return pm(self.metric), pm(self.reference_metric), pm(self.drop), self.n

    def text(self) -> str:
        g, f, d, n = self.per_mille()
        return f"global={g} factory={f} drop={d} n={n}"


@dataclass(frozen=True)
class DeviceState:
    """What a device carries from one round to the next (firmware/app/flt_device.c): its
    error-feedback residual, its drift-control (FedDyn) state and the model it serves
    (None: the global model). A fresh or rebooted device has zeros and None.

    A device that serves its factory model (the bundle's head params: disabled by the host, or
    reverted after a GLOBAL it could not apply; firmware/app/flt_device.h) trains on nothing
    meanwhile, so its state does not change: it refuses TRAIN until enabled or resynced with a
    FULL GLOBAL, and then serves its own model again."""

    residual: np.ndarray
    drift: np.ndarray
    served: np.ndarray | None = None

    @classmethod
    def fresh(cls, n_params: int) -> DeviceState:
        return cls(np.zeros(n_params, np.float32), np.zeros(n_params, np.float32), None)


# C typedef of each mirror: checked against the compiler when the library loads (fltiny/native/abi)
_ABI_MIRRORS = {
    "flt_layer_t": _Layer, "flt_head_t": _Head, "flt_round_model_t": _Model,
    "flt_round_state_t": _State, "flt_round_ws_t": _Ws, "flt_round_sizes_t": _Sizes,
    "flt_round_result_t": _Result, "flt_round_check_t": _Check,
}


@dataclass
class RoundOutput:
    payload: bytes
    mean_loss: float
    examples: int
    k: int
    params: np.ndarray  # the local model after training
    personal_n: int
    personal_metric: float
    state: DeviceState  # the device's state once the DELTA is acknowledged


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _stable_codegen(gen):
    """The generated backbone moved to build/native/replay/<hash of its text>: the host
    library's build key names its sources' paths, so a fresh temporary folder per process
    rebuilt the library (~5-7 s) on every ``fltiny simulate`` / ``run``. The rename is
    atomic; a folder another process put there first holds the same text and is used."""
    import dataclasses
    import hashlib
    import os

    from fltiny.native.build import build_dir

    text = gen.header.read_bytes() + b"\0" + gen.source.read_bytes()
    stable = build_dir() / "replay" / hashlib.sha256(text).hexdigest()[:16]
    if not stable.is_dir():
        stable.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(gen.header.parent, stable)
        except OSError:
            if not stable.is_dir():
                raise
    return dataclasses.replace(gen, header=stable / gen.header.name,
                               source=stable / gen.source.name,
                               files=[stable / f.name for f in gen.files])


class HostRound:
    """flt_round_run for one bundle, on the host."""

    def __init__(self, bundle: Path, workdir: Path | None = None) -> None:
        from fltiny.codegen import generate
        from fltiny.export.bundle import read_bundle
        from fltiny.native import abi
        from fltiny.native.build import build_shared_library

        self.manifest, self.head, backbone = read_bundle(Path(bundle))
        if backbone is None:
            raise ToolchainError("the bundle has no backbone")
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fltiny-replay-")
            gen = _stable_codegen(generate(backbone, Path(self._tmp.name) / "gen",
                                           prefix="backbone"))
        else:
            gen = generate(backbone, Path(workdir) / "gen", prefix="backbone")
        self.lib_path = build_shared_library(
            ["kernels", "train", "delta", "proto", "crypto", "privacy"],
            extra_sources=[APP_DIR / "flt_round.c", APP_DIR / "flt_data.c", gen.source,
                           abi.abi_source(_ABI_MIRRORS, ["flt_round.h"])],
            include_dirs=[APP_DIR, Path(gen.header).parent], name="fltround")
        self.lib = C.CDLL(str(self.lib_path))
        abi.check(self.lib, _ABI_MIRRORS, "fltiny/devices/replay.py")
        self.lib.flt_round_run_message.restype = C.c_int
        self.lib.flt_round_self_check_message.restype = C.c_int
        self.lib.flt_round_sizes.restype = C.c_int
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
            h.layers[i] = _Layer(*lyr.c_fields())
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

    def self_check(self, global_params: np.ndarray, blob: DataBlob, train: Train,
                   max_windows: int | None = None) -> SelfCheck:
        """The self-check a device holding ``blob`` runs for ``train`` after a GLOBAL gave it
        ``global_params`` (flt_round_self_check_message: the factory head, the bundle's
        initial parameters, is the reference; the drop is the TRAIN's)."""
        P = self.n_params
        g = np.ascontiguousarray(global_params, dtype=np.float32).reshape(P)
        factory = np.ascontiguousarray(self.head.params, dtype=np.float32).reshape(P)
        raw = blob.encode()
        aligned = np.zeros((len(raw) + 3) // 4, np.uint32)
        aligned.view(np.uint8)[: len(raw)] = np.frombuffer(raw, np.uint8)
        tbuf = np.frombuffer(train.encode(), np.uint8).copy()
        sz = _Sizes()
        check("flt_round_sizes", self.lib.flt_round_sizes(C.byref(self._head), 0, P,
                                                          C.byref(sz)))
        feat_q = np.zeros(self.n_features, np.int8)
        x = np.zeros(self.n_features, np.float32)
        work = np.zeros(max(1, sz.work), np.float32)
        ws = _Ws()
        ws.feat_q, ws.x, ws.work, ws.work_len = _ptr(feat_q), _ptr(x), _ptr(work), sz.work
        model = _Model(C.pointer(self._head), self._invoke, self.window_bytes, self.n_features,
                       self.feature_scale, self.feature_zero_point)
        out = _Check()
        s = self.lib.flt_round_self_check_message(
            C.byref(model), C.c_void_p(_ptr(aligned)), C.c_size_t(len(raw)),
            C.c_uint32(max_windows or 0xFFFFFFFF), C.c_void_p(_ptr(tbuf)),
            C.c_size_t(tbuf.size), C.c_void_p(_ptr(g)), C.c_void_p(_ptr(factory)), C.byref(ws),
            C.byref(out))
        check("flt_round_self_check", s)
        return SelfCheck(int(out.n), float(out.metric), float(out.reference_metric),
                         float(out.drop), bool(out.failed))

    def run(self, global_params: np.ndarray, blob: DataBlob, train: Train,
            state: DeviceState | None = None, max_windows: int | None = None,
            ldp_key: bytes | None = None, ldp_nonce: int = 0) -> RoundOutput:
        """The round of a device holding `blob` that trains on at most `max_windows` windows
        (its board's FLT_APP_MAX_WINDOWS; None: all), through flt_round_run_message: the
        device's own path from its blob and TRAIN bytes. A TRAIN with LOCAL_DP needs the
        device's noise secret ``ldp_key`` (32 bytes) and a nonce it never used under that key;
        a host replaying such a round without the device's secret passes its own key and can
        compare only what comes before the noise (loss, examples, personal metric)."""
        P = self.n_params
        g = np.ascontiguousarray(global_params, dtype=np.float32).reshape(P)
        state = state or DeviceState.fresh(P)
        raw = blob.encode()
        aligned = np.zeros((len(raw) + 3) // 4, np.uint32)  # flt_data_parse needs 4-byte alignment
        aligned.view(np.uint8)[: len(raw)] = np.frombuffer(raw, np.uint8)
        tbytes = train.encode()
        n_train = min(blob.n_train, max_windows or blob.n_train)
        sz = _Sizes()
        s = self.lib.flt_round_sizes(C.byref(self._head), n_train, P, C.byref(sz))
        check("flt_round_sizes", s)
        residual = np.array(state.residual, dtype=np.float32)
        drift = np.array(state.drift, dtype=np.float32)
        served = None if state.served is None else np.ascontiguousarray(state.served, np.float32)
        arrays = dict(feat_q=np.zeros(self.n_features, np.int8),
                      feat_cache=np.zeros(max(1, sz.feat_cache), np.int8),
                      x=np.zeros(self.n_features, np.float32), params=np.zeros(P, np.float32),
                      velocity=np.zeros(P, np.float32),
                      work=np.zeros(sz.work, np.float32), order=np.zeros(max(1, n_train), np.uint32),
                      indices=np.zeros(P, np.uint32), values=np.zeros(P, np.int8),
                      scales=np.zeros(max(1, sz.scales), np.float32))
        ws = _Ws(**{k_: _ptr(v) for k_, v in arrays.items()})
        ws.work_len = sz.work
        ws.k_cap = P
        key = None
        if ldp_key is not None:
            if len(ldp_key) != 32:
                raise ToolchainError(f"a local-DP key is 32 bytes, got {len(ldp_key)}")
            key = np.frombuffer(bytes(ldp_key), np.uint8).copy()
        st = _State(None if served is None else _ptr(served), _ptr(residual), _ptr(drift),
                    None if key is None else _ptr(key), C.c_uint32(ldp_nonce & 0xFFFFFFFF))
        model = _Model(C.pointer(self._head), self._invoke, self.window_bytes, self.n_features,
                       self.feature_scale, self.feature_zero_point)
        payload = np.zeros(sz.payload, np.uint8)
        tbuf = np.frombuffer(tbytes, np.uint8).copy()
        result = _Result()
        s = self.lib.flt_round_run_message(
            C.byref(model), C.c_void_p(_ptr(aligned)), C.c_size_t(len(raw)),
            C.c_uint32(max_windows or 0xFFFFFFFF), C.c_void_p(_ptr(tbuf)), C.c_size_t(len(tbytes)),
            C.c_void_p(_ptr(g)), C.byref(st), C.byref(ws), C.c_void_p(_ptr(payload)),
            C.c_size_t(payload.size), C.byref(result))
        check("flt_round_run", s)
        params = arrays["params"].copy()
        flags = int(result.flags)
        # the C updates `drift` (a copy) only with the DRIFT flag, so it is the next state as is
        # the model it serves next (flt_round.h step 6): its local model, the global one (None)
        # when SELECT preferred it, or unchanged without PERSONAL
        served_next = (params if result.serve_local
                       else None if flags & TRAIN_PERSONAL else state.served)
        nxt = DeviceState(residual, drift, served_next)
        return RoundOutput(payload[: result.payload_len].tobytes(), float(result.mean_loss),
                           int(result.examples), int(result.k), params, int(result.personal_n),
                           float(result.personal_metric), nxt)
