"""Held-out evaluation with the device's own C: the generated int8 backbone and the runtime's
``flt_dense_forward`` / ``flt_loss_softmax_ce`` / ``flt_loss_mse`` from the HostRound library.

Backbone features of the held-out windows are computed once (the backbone is frozen) and
dequantized exactly like firmware/app/flt_round.c does; each evaluation then runs only the
float32 head, sample by sample, in C. Classification: accuracy and mean cross-entropy;
regression: MAE and mean squared error.
"""

from __future__ import annotations

import ctypes as C

import numpy as np

from fltiny.native.status import check


class HoldoutEvaluator:
    def __init__(self, host_round, windows_q: np.ndarray, y: np.ndarray) -> None:
        self.hr = host_round
        feats_q = host_round.backbone(windows_q)  # int8 [N, F]
        self.features = ((feats_q.astype(np.int32) - np.int32(host_round.feature_zero_point))
                         .astype(np.float32) * np.float32(host_round.feature_scale)).astype(np.float32)
        self.features = np.ascontiguousarray(self.features)
        self.y = np.asarray(y)
        self.task = host_round.manifest.task
        lib = host_round.lib
        lib.flt_dense_forward.restype = C.c_int
        lib.flt_dense_forward.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p, C.c_void_p,
                                          C.c_uint32]
        lib.flt_loss_softmax_ce.restype = C.c_int
        lib.flt_loss_softmax_ce.argtypes = [C.c_void_p, C.c_uint32, C.c_int32, C.c_void_p,
                                            C.c_void_p]
        lib.flt_loss_mse.restype = C.c_int
        lib.flt_loss_mse.argtypes = [C.c_void_p, C.c_void_p, C.c_uint32, C.c_void_p, C.c_void_p]
        layers = host_round.head.layers
        self.n_acts = sum(lyr.n_out for lyr in layers)
        self.n_out = layers[-1].n_out

    @classmethod
    def for_dataset(cls, host_round, dataset: str) -> HoldoutEvaluator:
        from fltiny.data import load_dataset
        from fltiny.devices.data import quantize_windows

        hold = load_dataset(dataset).holdout()
        return cls(host_round, quantize_windows(hold.x, host_round.manifest), hold.y)

    def outputs(self, params: np.ndarray) -> np.ndarray:
        p = np.ascontiguousarray(params, dtype=np.float32)
        acts = np.zeros(self.n_acts, np.float32)
        out = np.zeros((len(self.features), self.n_out), np.float32)
        fwd = self.hr.lib.flt_dense_forward
        head = C.byref(self.hr._head)
        for i in range(len(self.features)):
            s = fwd(head, p.ctypes.data, self.features[i].ctypes.data, acts.ctypes.data,
                    self.n_acts)
            check("flt_dense_forward", s)
            out[i] = acts[self.n_acts - self.n_out:]
        return out

    def __call__(self, params: np.ndarray) -> dict[str, float]:
        out = self.outputs(params)
        lib = self.hr.lib
        loss = np.zeros(1, np.float32)
        grad = np.zeros(self.n_out, np.float32)
        total = 0.0
        if self.task == "classification":
            labels = self.y.astype(np.int32)
            for i in range(len(out)):
                row = np.ascontiguousarray(out[i])
                s = lib.flt_loss_softmax_ce(row.ctypes.data, self.n_out, int(labels[i]),
                                            loss.ctypes.data, grad.ctypes.data)
                check("flt_loss_softmax_ce", s)
                total += float(loss[0])
            # argmax: the first maximum, like the C loss's max
            acc = float(np.mean(np.argmax(out, axis=1) == labels))
            return {"accuracy": acc, "loss": total / len(out)}
        t = self.y.astype(np.float32).reshape(len(out), -1)
        for i in range(len(out)):
            row, ti = np.ascontiguousarray(out[i]), np.ascontiguousarray(t[i])
            s = lib.flt_loss_mse(row.ctypes.data, ti.ctypes.data, self.n_out, loss.ctypes.data,
                                 grad.ctypes.data)
            check("flt_loss_mse", s)
            total += float(loss[0])
        return {"mae": float(np.mean(np.abs(out - t))), "loss": total / len(out)}


