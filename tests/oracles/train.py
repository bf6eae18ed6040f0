"""Numpy oracle (tests only) of the on-device head training (firmware/runtime/train/).

This module is the readable specification of the C runtime: the same float32 operations in
the same order, so that for the same inputs the C code and this twin produce the same bits
(the tests check that, and the acceptance tolerance of 1e-5 relative over 100 steps).

What is mirrored, one function per C function:

* ``expf`` / ``logf`` / ``sqrtf``  - ``flt_math.c`` (own exp/log, no libm; sqrt is the
  correctly rounded IEEE sqrt, which ``np.sqrt`` on float32 is too);
* ``Pcg32`` and ``Pcg32.shuffle`` - ``flt_rng.c``: PCG32 XSH-RR (O'Neill 2014) and the
  Fisher-Yates shuffle;
* ``dense_forward`` / ``dense_backward`` - ``flt_dense.c``;
* ``softmax_ce`` / ``mse`` - ``flt_loss.c``;
* ``clip_grad_norm`` / ``sgd_step`` - ``flt_optim.c``: SGD with momentum, weight decay and the
  FedProx proximal term (T. Li et al., "Federated Optimization in Heterogeneous Networks",
  MLSys 2020);
* ``train_step`` / ``train_epochs`` - ``flt_train_loop.c``;
* ``train_sizes`` - ``flt_train_sizes`` in ``flt_head.c`` (static buffer sizes).

Sums are sequential (``a0 + a1 + a2 ...`` from the first element) on both sides; here they
are ``np.cumsum(..., dtype=float32)[-1]``, which numpy evaluates left to right.

The flat parameter vector: for each layer, ``W`` row-major ``[out][in]`` then ``b[out]``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = np.float32
FloatArray = npt.NDArray[np.float32]

MAX_LAYERS = 8
MAX_WIDTH = 4096
MAX_PARAMS = 1 << 24
TRAIN_RNG_STREAM = 0x666C74696E79  # "fltiny"

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
_PCG_MULT = 6364136223846793005


def _c(hexfloat: str) -> np.float32:
    """A float32 constant from its C hex-float spelling (exact, no double rounding)."""
    return F32(float.fromhex(hexfloat))


# flt_math.c constants, spelled exactly as in C
LN2_HI = _c("0x1.62e400p-1")
LN2_LO = _c("0x1.7f7d1cp-20")
LOG2E = _c("0x1.715476p+0")
EXP_OVER = _c("0x1.62e430p+6")
EXP_UNDER = _c("-0x1.9fe368p+6")
_EXP_C = [_c(h) for h in ("0x1.a01a02p-13", "0x1.6c16c2p-10", "0x1.111112p-7",
                          "0x1.555556p-5", "0x1.555556p-3", "0x1.000000p-1")]
_LOG_L = [_c(h) for h in ("0x1.c71c72p-3", "0x1.24924ap-2", "0x1.99999ap-2", "0x1.555556p-1")]
_ONE = F32(1.0)
_ZERO = F32(0.0)


class Act(enum.IntEnum):
    NONE = 0
    RELU = 1


class Loss(enum.IntEnum):
    SOFTMAX_CE = 0
    MSE = 1


class TrainTwinError(ValueError):
    """Bad input to the twin; ``status`` names the flt_status_t the C runtime returns."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


# ---------------------------------------------------------------------------------------------
# math


def expf(x: npt.ArrayLike) -> FloatArray:
    """Twin of flt_expf, elementwise on a float32 array."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(all="ignore"):
        valid = (x <= EXP_OVER) & (x >= EXP_UNDER)  # NaN: False
        t = np.where(valid, x * LOG2E, _ZERO)
        tr = np.where(t >= _ZERO, t + F32(0.5), t - F32(0.5))
        n = np.trunc(tr).astype(np.int32)
        fn = n.astype(F32)
        r = x - fn * LN2_HI
        r = r - fn * LN2_LO
        p = np.full_like(x, _EXP_C[0])
        for coef in _EXP_C[1:]:
            p = p * r + coef
        p = p * r + _ONE
        p = p * r + _ONE
        big = n > 127
        p = np.where(big, p * F32(2.0**127), p)
        n = np.where(big, n - 127, n)
        small = n < -126
        p = np.where(small, p * F32(2.0**-126), p)
        n = np.where(small, n + 126, n)
        n = np.where(valid, n, 0)
        scale = ((n + 127).astype(np.uint32) << np.uint32(23)).view(F32)
        res = p * scale
    res = np.where(x > EXP_OVER, F32(np.inf), res)
    res = np.where(x < EXP_UNDER, _ZERO, res)
    return np.where(np.isnan(x), x, res).astype(F32)


def logf(x: npt.ArrayLike) -> FloatArray:
    """Twin of flt_logf, elementwise on a float32 array."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(all="ignore"):
        u = x.view(np.uint32)
        sub = (u < np.uint32(0x00800000)) & (x > _ZERO)
        xs = np.where(sub, x * F32(2.0**25), x)
        u = xs.view(np.uint32)
        e = np.where(sub, -25, 0).astype(np.int32)
        e = e + (u >> np.uint32(23)).astype(np.int32) - 127
        mant = (u & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)
        hi = mant > np.uint32(0x3FB504F3)
        mant = np.where(hi, mant - np.uint32(0x00800000), mant).astype(np.uint32)
        e = np.where(hi, e + 1, e)
        m = mant.view(F32)
        f = m - _ONE
        s = f / (F32(2.0) + f)
        z = s * s
        big_r = np.full_like(x, _LOG_L[0])
        for coef in _LOG_L[1:]:
            big_r = z * big_r + coef
        big_r = z * big_r
        lm = f - s * (f - big_r)
        fe = e.astype(F32)
        res = fe * LN2_HI + (lm + fe * LN2_LO)
    res = np.where(x == np.inf, x, res)
    res = np.where(x < _ZERO, F32(np.nan), res)
    res = np.where(x == _ZERO, F32(-np.inf), res)
    return np.where(np.isnan(x), x, res).astype(F32)


def sqrtf(x: npt.ArrayLike) -> FloatArray:
    """Twin of flt_sqrtf: the correctly rounded float32 square root."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.asarray(x, dtype=F32))


def _seqsum(a: FloatArray, axis: int = -1) -> FloatArray:
    """Left-to-right float32 sum along ``axis``, starting from the first element (as in C)."""
    return np.take(np.cumsum(a, axis=axis, dtype=F32), -1, axis=axis)


# ---------------------------------------------------------------------------------------------
# PRNG


class Pcg32:
    """PCG32 (XSH RR), seeded like pcg32_srandom_r; twin of flt_rng.c."""

    def __init__(self, seed: int, stream: int = TRAIN_RNG_STREAM) -> None:
        self.inc = ((stream << 1) | 1) & _MASK64
        self.state = 0
        self._step()
        self.state = (self.state + seed) & _MASK64
        self._step()

    def _step(self) -> None:
        self.state = (self.state * _PCG_MULT + self.inc) & _MASK64

    def next_u32(self) -> int:
        old = self.state
        self._step()
        xorshifted = (((old >> 18) ^ old) >> 27) & _MASK32
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & _MASK32

    def bounded(self, bound: int) -> int:
        """Unbiased integer in [0, bound) by rejection below 2^32 mod bound."""
        if not 0 < bound <= _MASK32:
            raise TrainTwinError("FLT_ERR_RANGE", f"bound {bound} outside [1, 2^32)")
        threshold = (-bound & _MASK32) % bound
        while True:
            r = self.next_u32()
            if r >= threshold:
                return r % bound

    def uniform(self) -> np.float32:
        """Float in [0, 1) with 24 random bits (flt_rng_uniform)."""
        return F32(self.next_u32() >> 8) * F32(2.0**-24)

    def shuffle(self, a: np.ndarray) -> None:
        """Fisher-Yates in place: for i = n-1 down to 1, swap a[i] with a[bounded(i+1)]."""
        for i in range(len(a) - 1, 0, -1):
            j = self.bounded(i + 1)
            a[i], a[j] = a[j], a[i]


# ---------------------------------------------------------------------------------------------
# head description


@dataclass(frozen=True)
class Layer:
    in_size: int
    out_size: int
    act: Act = Act.NONE


@dataclass(frozen=True)
class HeadSpec:
    """A stack of dense layers and the loss on the last one (flt_head_t)."""

    layers: tuple[Layer, ...]
    loss: Loss = Loss.SOFTMAX_CE

    @classmethod
    def mlp(cls, sizes: Sequence[int], *, loss: Loss = Loss.SOFTMAX_CE,
            hidden_act: Act = Act.RELU, out_act: Act = Act.NONE) -> HeadSpec:
        """sizes = [n_inputs, hidden..., n_outputs]; e.g. mlp([64, 32, 6])."""
        n = len(sizes) - 1
        layers = tuple(Layer(sizes[i], sizes[i + 1], hidden_act if i < n - 1 else out_act)
                       for i in range(n))
        return cls(layers, loss)

    def check(self) -> None:
        """Raise TrainTwinError with the status flt_head_check returns; None when valid."""
        if not self.layers:
            raise TrainTwinError("FLT_ERR_SHAPE", "a head needs at least one layer")
        if len(self.layers) > MAX_LAYERS:
            raise TrainTwinError("FLT_ERR_RANGE", f"{len(self.layers)} layers > {MAX_LAYERS}")
        if self.loss not in tuple(Loss):
            raise TrainTwinError("FLT_ERR_UNSUPPORTED", f"unknown loss {self.loss}")
        total = 0
        for i, ly in enumerate(self.layers):
            if not (0 < ly.in_size <= MAX_WIDTH and 0 < ly.out_size <= MAX_WIDTH):
                raise TrainTwinError("FLT_ERR_RANGE", f"layer {i} size outside 1..{MAX_WIDTH}")
            if ly.act not in tuple(Act):
                raise TrainTwinError("FLT_ERR_UNSUPPORTED", f"layer {i}: unknown act {ly.act}")
            if i > 0 and ly.in_size != self.layers[i - 1].out_size:
                raise TrainTwinError("FLT_ERR_SHAPE", f"layer {i} input != layer {i - 1} output")
            total += ly.in_size * ly.out_size + ly.out_size
            if total > MAX_PARAMS:
                raise TrainTwinError("FLT_ERR_OVERSIZE", f"more than {MAX_PARAMS} parameters")

    @property
    def n_inputs(self) -> int:
        return self.layers[0].in_size

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].out_size

    @property
    def param_offsets(self) -> list[int]:
        """Start of each layer's W in the flat vector (its bias follows W)."""
        offs, off = [], 0
        for ly in self.layers:
            offs.append(off)
            off += ly.in_size * ly.out_size + ly.out_size
        return offs

    @property
    def n_params(self) -> int:
        return sum(ly.in_size * ly.out_size + ly.out_size for ly in self.layers)

    def unpack(self, params: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
        """Views (W [out, in], b [out]) of each layer into the flat vector."""
        out = []
        for off, ly in zip(self.param_offsets, self.layers, strict=True):
            nw = ly.in_size * ly.out_size
            out.append((params[off:off + nw].reshape(ly.out_size, ly.in_size),
                        params[off + nw:off + nw + ly.out_size]))
        return out


@dataclass(frozen=True)
class TrainSizes:
    """Mirror of flt_train_sizes_t: element counts of the buffers a device must provide."""

    n_params: int
    n_acts: int
    max_width: int
    n_inputs: int
    n_outputs: int
    work_floats: int
    opt_state_floats: int
    order_len: int
    total_bytes: int


def train_sizes(head: HeadSpec, n_samples: int) -> TrainSizes:
    """FLT_TRAIN_WORK_FLOATS = P + A + 2*Wmax; optimizer state = P; order = n_samples."""
    head.check()
    p = head.n_params
    a = sum(ly.out_size for ly in head.layers)
    wmax = max(ly.out_size for ly in head.layers)
    work = p + a + 2 * wmax
    return TrainSizes(n_params=p, n_acts=a, max_width=wmax, n_inputs=head.n_inputs,
                      n_outputs=head.n_outputs, work_floats=work, opt_state_floats=p,
                      order_len=n_samples, total_bytes=4 * (work + p + n_samples))


# ---------------------------------------------------------------------------------------------
# forward / backward


def dense_forward(head: HeadSpec, params: FloatArray, x: FloatArray) -> list[FloatArray]:
    """Every layer's output for one sample (flt_dense_forward); the last is the network output."""
    acts: list[FloatArray] = []
    inp = np.asarray(x, dtype=F32)
    for (w, b), ly in zip(head.unpack(params), head.layers, strict=True):
        z = _seqsum(w * inp[None, :], axis=1) + b
        if ly.act == Act.RELU:
            z = np.where(z > _ZERO, z, _ZERO).astype(F32)
        acts.append(z)
        inp = z
    return acts


def dense_backward(head: HeadSpec, params: FloatArray, x: FloatArray,
                   acts: Sequence[FloatArray], dout: FloatArray) -> FloatArray:
    """dL/dparams (flat) for one sample, given dL/d(output) (flt_dense_backward)."""
    grad = np.empty(head.n_params, dtype=F32)
    gviews = head.unpack(grad)
    wb = head.unpack(params)
    n = len(head.layers)
    d = np.asarray(dout, dtype=F32)
    if head.layers[-1].act == Act.RELU:
        d = np.where(acts[-1] > _ZERO, d, _ZERO).astype(F32)
    for li in range(n - 1, -1, -1):
        inp = np.asarray(x, dtype=F32) if li == 0 else acts[li - 1]
        gw, gb = gviews[li]
        # rows with dz == 0 are skipped by the C: stored as +0 (accumulated: left alone, which
        # differs from adding this +0 only in the sign of an all-zero sum)
        live = d != _ZERO
        gw[...] = np.where(live[:, None], d[:, None] * inp[None, :], _ZERO)
        gb[...] = np.where(live, d, _ZERO)
        if li > 0:
            w = wb[li][0]
            # sequential over the rows with dz != 0 only; +0 when there is none
            if live.any():
                d = _seqsum(w[live] * d[live][:, None], axis=0)
            else:
                d = np.zeros(w.shape[1], dtype=F32)
            if head.layers[li - 1].act == Act.RELU:
                d = np.where(inp > _ZERO, d, _ZERO).astype(F32)
    return grad


# ---------------------------------------------------------------------------------------------
# losses


def softmax_ce(logits: FloatArray, label: int) -> tuple[np.float32, FloatArray]:
    """(loss, dL/dlogits) of softmax cross-entropy, stable form (flt_loss_softmax_ce)."""
    z = np.asarray(logits, dtype=F32)
    if not 0 <= label < len(z):
        raise TrainTwinError("FLT_ERR_RANGE", f"label {label} outside [0, {len(z)})")
    m = z[int(np.argmax(z))]
    zy = z[label] - m
    e = expf(z - m)
    s = _seqsum(e)
    loss = F32(logf(s) - zy)
    d = (e / s).astype(F32)
    d[label] = d[label] - _ONE
    return loss, d


def mse(y: FloatArray, t: FloatArray) -> tuple[np.float32, FloatArray]:
    """(loss, dL/dy) of the mean squared error over the outputs (flt_loss_mse)."""
    y = np.asarray(y, dtype=F32)
    n = F32(len(y))
    d = y - np.asarray(t, dtype=F32)
    loss = F32(_seqsum(d * d) / n)
    return loss, (F32(2.0) / n) * d


# ---------------------------------------------------------------------------------------------
# optimizer


@dataclass(frozen=True)
class SgdConfig:
    """flt_sgd_cfg_t: all values are rounded to float32 first, as the device stores them."""

    lr: float
    momentum: float = 0.0
    mu: float = 0.0
    clip: float = 0.0
    weight_decay: float = 0.0

    def check(self) -> None:
        vals = [F32(v) for v in (self.lr, self.momentum, self.mu, self.clip, self.weight_decay)]
        if not all(np.isfinite(v) and v >= 0 for v in vals) or not vals[1] < 1:
            raise TrainTwinError("FLT_ERR_RANGE", f"bad SGD hyper-parameters {self}")


def clip_grad_norm(grad: FloatArray, clip: float) -> tuple[FloatArray, np.float32]:
    """(clipped gradient, its norm before clipping) (flt_clip_grad_norm)."""
    g = np.asarray(grad, dtype=F32)
    norm = sqrtf(_seqsum(g * g)) if len(g) else F32(0.0)
    if not np.isfinite(norm):
        raise TrainTwinError("FLT_ERR_NONFINITE", "gradient norm is not finite")
    c = F32(clip)
    if c > _ZERO and norm > c:
        g = g * (c / norm)
    return g, F32(norm)


def sgd_step(params: FloatArray, grad: FloatArray, velocity: FloatArray,
             global_params: FloatArray | None, cfg: SgdConfig) -> tuple[FloatArray, FloatArray]:
    """(new params, new velocity): g += wd*w; g += mu*(w - w_global); v = m*v + g; w -= lr*v."""
    cfg.check()
    w = np.asarray(params, dtype=F32)
    g = np.asarray(grad, dtype=F32)
    wd, mu = F32(cfg.weight_decay), F32(cfg.mu)
    if wd != _ZERO:
        g = g + wd * w
    if mu != _ZERO:
        if global_params is None:
            raise TrainTwinError("FLT_ERR_ARG", "mu > 0 needs the global params")
        g = g + mu * (w - np.asarray(global_params, dtype=F32))
    v = F32(cfg.momentum) * np.asarray(velocity, dtype=F32) + g
    return (w - F32(cfg.lr) * v).astype(F32), v.astype(F32)


# ---------------------------------------------------------------------------------------------
# training loop


@dataclass(frozen=True)
class TrainConfig:
    """flt_train_cfg_t."""

    epochs: int
    batch_size: int
    seed: int
    sgd: SgdConfig = field(default_factory=lambda: SgdConfig(lr=0.01))


@dataclass
class TrainResult:
    params: FloatArray
    velocity: FloatArray
    mean_loss: np.float32
    epoch_losses: list[np.float32]


def _sample_loss(head: HeadSpec, out: FloatArray, s: int, labels: npt.NDArray[np.int32] | None,
                 targets: FloatArray | None) -> tuple[np.float32, FloatArray]:
    if head.loss == Loss.SOFTMAX_CE:
        assert labels is not None
        return softmax_ce(out, int(labels[s]))
    assert targets is not None
    return mse(out, targets[s])


def _check_data(head: HeadSpec, features: FloatArray, labels: npt.ArrayLike | None,
                targets: npt.ArrayLike | None) -> tuple[npt.NDArray[np.int32] | None,
                                                        FloatArray | None]:
    head.check()
    if features.ndim != 2 or features.shape[1] != head.n_inputs or len(features) == 0:
        raise TrainTwinError("FLT_ERR_ARG", f"features must be [n>0, {head.n_inputs}]")
    if head.loss == Loss.SOFTMAX_CE:
        if labels is None:
            raise TrainTwinError("FLT_ERR_ARG", "a classification head needs labels")
        lab = np.asarray(labels, dtype=np.int32)
        if np.any(lab < 0) or np.any(lab >= head.n_outputs):
            raise TrainTwinError("FLT_ERR_RANGE", "label outside [0, n_outputs)")
        return lab, None
    if targets is None:
        raise TrainTwinError("FLT_ERR_ARG", "a regression head needs targets")
    return None, np.asarray(targets, dtype=F32).reshape(len(features), head.n_outputs)


def _step(head: HeadSpec, params: FloatArray, global_params: FloatArray | None,
          velocity: FloatArray, features: FloatArray, labels: npt.NDArray[np.int32] | None,
          targets: FloatArray | None, idx: Sequence[int],
          cfg: SgdConfig) -> tuple[FloatArray, FloatArray, np.float32]:
    grad = np.zeros(0, dtype=F32)
    total = _ZERO
    for b, s in enumerate(idx):
        x = features[s]
        if not np.all(np.isfinite(x)):  # flt_train_sample checks every input
            raise TrainTwinError("FLT_ERR_NONFINITE", f"sample {s} has a non-finite input")
        acts = dense_forward(head, params, x)
        loss, dout = _sample_loss(head, acts[-1], int(s), labels, targets)
        total = loss if b == 0 else F32(total + loss)
        g = dense_backward(head, params, x, acts, dout)
        grad = g if b == 0 else grad + g
    if not np.isfinite(total):
        raise TrainTwinError("FLT_ERR_NONFINITE", "batch loss is not finite")
    grad = grad / F32(len(idx))
    if F32(cfg.clip) > _ZERO:
        grad, _ = clip_grad_norm(grad, cfg.clip)
    params, velocity = sgd_step(params, grad, velocity, global_params, cfg)
    return params, velocity, total


def train_step(head: HeadSpec, params: FloatArray, global_params: FloatArray | None,
               velocity: FloatArray, features: FloatArray, *, labels: npt.ArrayLike | None = None,
               targets: npt.ArrayLike | None = None, idx: Sequence[int] | None = None,
               sgd: SgdConfig) -> tuple[FloatArray, FloatArray, np.float32]:
    """One step on one batch (flt_train_step): (new params, new velocity, mean batch loss)."""
    features = np.asarray(features, dtype=F32)
    lab, tgt = _check_data(head, features, labels, targets)
    sgd.check()
    if idx is None:
        idx = range(len(features))
    params, velocity, total = _step(head, np.asarray(params, dtype=F32), global_params,
                                    np.asarray(velocity, dtype=F32), features, lab, tgt,
                                    list(idx), sgd)
    return params, velocity, F32(total / F32(len(idx)))


def epoch_orders(n_samples: int, epochs: int, seed: int) -> list[npt.NDArray[np.uint32]]:
    """The sample order of every epoch of train_epochs (identity, then shuffled)."""
    rng = Pcg32(seed, TRAIN_RNG_STREAM)
    orders = []
    for _ in range(epochs):
        order = np.arange(n_samples, dtype=np.uint32)
        rng.shuffle(order)
        orders.append(order)
    return orders


def batches(order: npt.NDArray[np.uint32], batch_size: int) -> list[npt.NDArray[np.uint32]]:
    """Consecutive batches of an epoch's order; the last one may be shorter."""
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def train_epochs(head: HeadSpec, params: FloatArray, global_params: FloatArray | None,
                 velocity: FloatArray | None, features: FloatArray, *,
                 labels: npt.ArrayLike | None = None, targets: npt.ArrayLike | None = None,
                 cfg: TrainConfig) -> TrainResult:
    """cfg.epochs shuffled passes of mini-batch SGD (flt_train_epochs)."""
    features = np.asarray(features, dtype=F32)
    lab, tgt = _check_data(head, features, labels, targets)
    cfg.sgd.check()
    if cfg.epochs <= 0 or cfg.batch_size <= 0:
        raise TrainTwinError("FLT_ERR_ARG", "epochs and batch_size must be > 0")
    p = np.array(params, dtype=F32)
    v = np.zeros_like(p) if velocity is None else np.array(velocity, dtype=F32)
    n = len(features)
    epoch_losses: list[np.float32] = []
    for order in epoch_orders(n, cfg.epochs, cfg.seed):
        total = _ZERO
        for i, batch in enumerate(batches(order, cfg.batch_size)):
            p, v, s = _step(head, p, global_params, v, features, lab, tgt, batch.tolist(),
                            cfg.sgd)
            total = s if i == 0 else F32(total + s)
        epoch_losses.append(F32(total / F32(n)))
    return TrainResult(params=p, velocity=v, mean_loss=epoch_losses[-1],
                       epoch_losses=epoch_losses)
