"""Float64 numpy oracle of the device's float tail: Conv1D, global average pooling and dense
layers, forward, backward and loss (firmware/runtime/train/flt_conv1d.h, flt_gap1d.h,
flt_dense.h).

Written from the maths, not from the C: the convolution is an explicit im2col over a zero
padded input, its gradients are the adjoint of that matrix product, and everything runs in
float64, so agreement with the C's float32 sums is to rounding, never bit for bit. Layer
descriptions are plain tuples of the C struct's fields; nothing here imports fltiny.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DENSE, CONV1D, GAP1D = 0, 1, 2
NONE, RELU = 0, 1


@dataclass(frozen=True)
class Layer:
    """flt_layer_t, field for field."""

    in_size: int
    out_size: int
    act: int = NONE
    kind: int = DENSE
    in_ch: int = 0
    out_ch: int = 0
    kernel: int = 0
    stride: int = 0
    pad_left: int = 0

    @classmethod
    def conv(cls, in_len: int, in_ch: int, out_ch: int, kernel: int, stride: int,
             padding: str = "same", act: int = RELU) -> Layer:
        """Keras Conv1D geometry ('same': TensorFlow's split, odd zero on the right)."""
        if padding == "same":
            out_len = -(-in_len // stride)
            pad_left = max((out_len - 1) * stride + kernel - in_len, 0) // 2
        else:
            out_len = (in_len - kernel) // stride + 1
            pad_left = 0
        return cls(in_len * in_ch, out_len * out_ch, act, CONV1D, in_ch, out_ch, kernel, stride,
                   pad_left)

    @classmethod
    def gap(cls, length: int, ch: int) -> Layer:
        return cls(length * ch, ch, NONE, GAP1D)

    @property
    def n_params(self) -> int:
        if self.kind == DENSE:
            return self.in_size * self.out_size + self.out_size
        if self.kind == CONV1D:
            return self.out_ch * self.kernel * self.in_ch + self.out_ch
        return 0

    @property
    def in_len(self) -> int:
        return self.in_size // (self.in_ch if self.kind == CONV1D else self.out_size)

    @property
    def out_len(self) -> int:
        return self.out_size // self.out_ch

    def fields(self) -> tuple[int, ...]:
        return (self.in_size, self.out_size, self.act, self.kind, self.in_ch, self.out_ch,
                self.kernel, self.stride, self.pad_left)


def n_params(layers: list[Layer]) -> int:
    return sum(ly.n_params for ly in layers)


def _split(layers: list[Layer], params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer (W, b) views; W as [out][in] (dense) or [out_ch][kernel][in_ch] (conv)."""
    out, off = [], 0
    for ly in layers:
        if ly.kind == DENSE:
            w = params[off:off + ly.in_size * ly.out_size].reshape(ly.out_size, ly.in_size)
        elif ly.kind == CONV1D:
            w = params[off:off + ly.out_ch * ly.kernel * ly.in_ch].reshape(
                ly.out_ch, ly.kernel, ly.in_ch)
        else:
            out.append((np.zeros(0), np.zeros(0)))
            continue
        off += w.size
        b = params[off:off + w.shape[0]]
        off += w.shape[0]
        out.append((w, b))
    return out


def _im2col(ly: Layer, x: np.ndarray) -> np.ndarray:
    """[out_len, kernel * in_ch] rows of the zero-padded input, (k, c) in W's order."""
    x = x.reshape(ly.in_len, ly.in_ch)
    span = (ly.out_len - 1) * ly.stride + ly.kernel
    pad_right = max(span - ly.in_len - ly.pad_left, 0)
    xp = np.concatenate([np.zeros((ly.pad_left, ly.in_ch)), x, np.zeros((pad_right, ly.in_ch))])
    rows = [xp[t * ly.stride:t * ly.stride + ly.kernel].reshape(-1) for t in range(ly.out_len)]
    return np.stack(rows)


def forward(layers: list[Layer], params: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """Each layer's output (after its activation), flat, float64."""
    p = np.asarray(params, np.float64)
    a = np.asarray(x, np.float64).reshape(-1)
    acts = []
    for ly, (w, b) in zip(layers, _split(layers, p), strict=True):
        if ly.kind == DENSE:
            z = w @ a + b
        elif ly.kind == CONV1D:
            z = (_im2col(ly, a) @ w.reshape(ly.out_ch, -1).T + b).reshape(-1)
        else:
            z = a.reshape(ly.in_len, ly.out_size).mean(axis=0)
        a = np.maximum(z, 0.0) if ly.act == RELU else z
        acts.append(a)
    return acts


def backward(layers: list[Layer], params: np.ndarray, x: np.ndarray, acts: list[np.ndarray],
             dout: np.ndarray) -> np.ndarray:
    """dL/dparams (flat, device order) given dL/d(output)."""
    p = np.asarray(params, np.float64)
    wb = _split(layers, p)
    grads: list[np.ndarray] = []
    d = np.asarray(dout, np.float64).reshape(-1)
    for i in range(len(layers) - 1, -1, -1):
        ly = layers[i]
        w, _ = wb[i]
        a_in = np.asarray(x, np.float64).reshape(-1) if i == 0 else acts[i - 1]
        if ly.act == RELU:
            d = d * (acts[i] > 0)
        if ly.kind == DENSE:
            grads.append(np.concatenate([np.outer(d, a_in).reshape(-1), d]))
            dx = w.T @ d
        elif ly.kind == CONV1D:
            dz = d.reshape(ly.out_len, ly.out_ch)
            cols = _im2col(ly, a_in)
            grads.append(np.concatenate([(dz.T @ cols).reshape(-1), dz.sum(axis=0)]))
            dcols = dz @ w.reshape(ly.out_ch, -1)  # [out_len, kernel*in_ch]
            span = (ly.out_len - 1) * ly.stride + ly.kernel
            dxp = np.zeros((max(span, ly.pad_left + ly.in_len), ly.in_ch))
            for t in range(ly.out_len):
                dxp[t * ly.stride:t * ly.stride + ly.kernel] += dcols[t].reshape(ly.kernel, -1)
            dx = dxp[ly.pad_left:ly.pad_left + ly.in_len].reshape(-1)
        else:
            grads.append(np.zeros(0))
            dx = np.tile(d / ly.in_len, ly.in_len)
        d = dx
    return np.concatenate(grads[::-1])


def softmax_ce(z: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    p = e / e.sum()
    g = p.copy()
    g[label] -= 1.0
    return float(np.log(e.sum()) - (z[label] - z.max())), g


def mse(z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    diff = np.asarray(z, np.float64) - np.asarray(target, np.float64)
    return float(np.mean(diff ** 2)), 2.0 * diff / diff.size


def loss(layers: list[Layer], params: np.ndarray, x: np.ndarray, y, classify: bool) -> float:
    out = forward(layers, params, x)[-1]
    return softmax_ce(out, int(y))[0] if classify else mse(out, y)[0]
