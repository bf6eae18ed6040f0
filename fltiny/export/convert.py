"""Full-int8 post-training quantization of the backbone with TFLiteConverter.

The backbone is re-wrapped on a fixed batch-1 input first: Keras 3 models with a dynamic
batch dimension convert Flatten/Reshape into run-time shape arithmetic; a static batch gives a
graph of static ops only (see docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from typing import Any

import numpy as np

from fltiny.errors import ExportError
from fltiny.quiet import quiet_native_output


def to_int8_tflite(backbone: Any, representative: np.ndarray, max_samples: int = 300) -> bytes:
    from fltiny.tf import keras, tf

    inp = keras.Input(tuple(backbone.inputs[0].shape[1:]), batch_size=1, name="input")
    fixed = keras.Model(inp, backbone(inp))
    rep = representative.astype(np.float32)[:max_samples]
    if len(rep) == 0:
        raise ExportError("the representative data set is empty")

    def samples():
        for row in rep:
            yield [row[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    sink = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sink), \
            quiet_native_output():
        cwd = os.getcwd()
        os.chdir(tmp)  # the converter may drop files into the working directory
        try:
            return bytes(converter.convert())
        except Exception as exc:  # the converter raises many unrelated types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"int8 conversion failed: {first}") from exc
        finally:
            os.chdir(cwd)
