"""An independent model of the device's window store (firmware/app/flt_window_store.h), for
tests: windows cut from a sample stream, the label rule, the most recent `capacity` kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Cut:
    windows: np.ndarray  # int8 [n, window_len, channels]: the accepted windows, in time order
    labels: np.ndarray  # int32 [n] (classification) or float32 [n, n_targets]
    cut: int  # windows completed
    rejected: int


def cut_windows(samples: np.ndarray, labels: np.ndarray, window_len: int, stride: int,
                n_classes: int = 0, targets: np.ndarray | None = None) -> Cut:
    """Every window ending at step window_len - 1 + j * stride (j = 0, 1, ...); a window is
    kept when all its steps carry the same valid label (classification) or its last step is
    labelled with finite targets (regression, `targets` given)."""
    windows, kept, rejected, cut = [], [], 0, 0
    for end in range(window_len - 1, len(samples), stride):
        cut += 1
        lo = end - window_len + 1
        if targets is None:
            lab = labels[lo : end + 1]
            ok = bool(np.all(lab == lab[-1]) and lab[-1] >= 0 and (n_classes == 0 or lab[-1] < n_classes))
            value = int(lab[-1])
        else:
            ok = bool(labels[end] != -1 and np.all(np.isfinite(targets[end])))
            value = np.asarray(targets[end], np.float32)
        if ok:
            windows.append(samples[lo : end + 1])
            kept.append(value)
        else:
            rejected += 1
    w = np.asarray(windows, np.int8).reshape(len(windows), window_len, samples.shape[1])
    lab_arr = np.asarray(kept, np.int32 if targets is None else np.float32)
    return Cut(w, lab_arr, cut, rejected)
