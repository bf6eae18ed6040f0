"""The one place that imports TensorFlow (slow: seconds), quietly. Import it lazily."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow as tf  # noqa: E402

keras = tf.keras

__all__ = ["keras", "tf"]
