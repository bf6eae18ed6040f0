"""Model builders and reference runners shared by the codegen tests (tests/test_codegen_*.py).

Each builder returns a Keras 3 model re-wrapped on a fixed batch-1 input (static ops only);
`convert_int8` turns it into a full-int8 .tflite (int8 input and output) with a seeded
representative dataset, so the flatbuffers are reproducible within a TF version.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _keras():
    import tensorflow as tf

    tf.random.set_seed(0)
    return tf, tf.keras


def _wrap(keras, model, shape, seed: int = 0):
    """Random non-zero weights and biases (untrained models have zero biases, which would
    leave the bias paths untested), then the fixed batch-1 re-wrap."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights(
                [rng.normal(0.0, 0.4 if w.ndim > 1 else 0.3, size=w.shape).astype(np.float32)
                 for w in ws]
            )
    i = keras.Input(shape, batch_size=1)
    return keras.Model(i, model(i))


def build_har():
    """(a) Conv1D stride 2 'same' + GlobalAveragePooling1D + Dense relu on 128x3."""
    tf, keras = _keras()
    L = keras.layers
    m = keras.Sequential(
        [
            keras.Input((128, 3)),
            L.Conv1D(8, 5, strides=2, padding="same", activation="relu"),
            L.Conv1D(12, 3, strides=2, padding="same", activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(16, activation="relu"),
        ]
    )
    return _wrap(keras, m, (128, 3)), (128, 3)


def build_image():
    """(b) Conv2D (dilated) + DepthwiseConv2D + MaxPool + AveragePool on 15x15x2."""
    tf, keras = _keras()
    L = keras.layers
    m = keras.Sequential(
        [
            keras.Input((15, 15, 2)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same",
                              activation="relu6"),
            L.Conv2D(6, 3, dilation_rate=2, padding="same"),
            L.MaxPooling2D(2, padding="same"),
            L.AveragePooling2D(3, strides=2, padding="same"),
            L.Flatten(),
            L.Dense(10, activation="relu"),
        ]
    )
    return _wrap(keras, m, (15, 15, 2)), (15, 15, 2)


def build_mlp():
    """(c) Dense relu layers, softmax output."""
    tf, keras = _keras()
    L = keras.layers
    m = keras.Sequential(
        [
            keras.Input((20,)),
            L.Dense(32, activation="relu"),
            L.Dense(16, activation="relu"),
            L.Dense(6),
            L.Softmax(),
        ]
    )
    return _wrap(keras, m, (20,)), (20,)


def build_residual():
    """(d) A residual block (ADD + relu) then global average pooling and Dense."""
    tf, keras = _keras()
    L = keras.layers
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu")(i)
    y = L.Conv2D(6, 3, padding="same", activation="relu")(x)
    y = L.Conv2D(6, 1, padding="valid")(y)
    z = L.Add()([x, y])
    z = L.ReLU()(z)
    z = L.GlobalAveragePooling2D()(z)
    z = L.Dense(8)(z)
    m = keras.Model(i, z)
    return _wrap(keras, m, (8, 8, 3)), (8, 8, 3)


def build_tanh():
    """A model with an op codegen does not support (TANH)."""
    tf, keras = _keras()
    L = keras.layers
    m = keras.Sequential([keras.Input((8,)), L.Dense(4), L.Activation("tanh")])
    return _wrap(keras, m, (8,)), (8,)


def convert_int8(model, shape, n_calib: int = 64, seed: int = 0) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    calib = rng.normal(0.0, 1.0, size=(n_calib, 1, *shape)).astype(np.float32)

    def rep():
        for x in calib:
            yield [x]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def tflm_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Run TFLM's interpreter (the reference) on each int8 input row; returns int8 rows."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(tflite, arena_size=256 * 1024)
    shape = tuple(interp.get_input_details(0)["shape"])
    outs = []
    for x in inputs:
        interp.set_input(x.reshape(shape).astype(np.int8), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0), dtype=np.int8).reshape(-1))
    return np.stack(outs)


def c_outputs(lib_path: Path, prefix: str, inputs: np.ndarray, out_size: int) -> np.ndarray:
    """Run the generated `<prefix>_invoke` on each int8 input row; returns int8 rows."""
    lib = ctypes.CDLL(str(lib_path))
    fn = getattr(lib, f"{prefix}_invoke")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    out = np.zeros((len(inputs), out_size), dtype=np.int8)
    for k, x in enumerate(inputs):
        xi = np.ascontiguousarray(x.reshape(-1), dtype=np.int8)
        status = fn(xi.ctypes.data, out[k].ctypes.data)
        if status != 0:
            raise RuntimeError(f"{prefix}_invoke returned status {status}")
    return out


def build_dwnet():
    """VALID strided conv with RELU6, depthwise (multiplier 1), VALID average pool, global
    average pooling 2-D (MEAN over H, W), Dense with softmax."""
    tf, keras = _keras()
    L = keras.layers
    m = keras.Sequential(
        [
            keras.Input((13, 11, 3)),
            L.Conv2D(5, 3, strides=2, padding="valid", activation="relu6"),
            L.DepthwiseConv2D(3, padding="valid", activation="relu"),
            L.AveragePooling2D(2, padding="valid"),
            L.GlobalAveragePooling2D(),
            L.Dense(4, activation="softmax"),
        ]
    )
    return _wrap(keras, m, (13, 11, 3)), (13, 11, 3)


# ---- model surgery on converted flatbuffers (TFLite schema object API; tests only) ----------


def _schema():
    from tensorflow.lite.python import schema_py_generated as s

    return s


def _unpack(tfl: bytes):
    return _schema().ModelT.InitFromPackedBuf(bytearray(tfl), 0)


def _pack(m) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _opcode_index(m, code: int) -> int:
    s = _schema()
    for k, oc in enumerate(m.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            return k
    oc = s.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)
    oc.version = 1
    m.operatorCodes.append(oc)
    return len(m.operatorCodes) - 1


def with_same_scale_mean(tfl: bytes) -> bytes:
    """Give every MEAN output the quantization of its input (TFLM's plain-division path)."""
    m = _unpack(tfl)
    g = m.subgraphs[0]
    mean = _opcode_index(m, 40)
    n = 0
    for op in g.operators:
        if op.opcodeIndex == mean:
            qi = g.tensors[op.inputs[0]].quantization
            qo = g.tensors[op.outputs[0]].quantization
            qo.scale, qo.zeroPoint = list(qi.scale), list(qi.zeroPoint)
            n += 1
    assert n, "no MEAN op"
    return _pack(m)


def with_requantize(tfl: bytes, after_op: int = 0, scale_factor: float = 1.7, zp_shift: int = 5
                    ) -> bytes:
    """Insert an int8 -> int8 QUANTIZE (requantization) after operator `after_op`."""
    import copy

    s = _schema()
    m = _unpack(tfl)
    g = m.subgraphs[0]
    src = g.operators[after_op].outputs[0]
    t = copy.deepcopy(g.tensors[src])
    t.name = (t.name or b"t") + b"_requant"
    t.quantization.scale = [float(v) * scale_factor for v in t.quantization.scale]
    t.quantization.zeroPoint = [int(np.clip(v + zp_shift, -128, 127))
                                for v in t.quantization.zeroPoint]
    g.tensors.append(t)
    new = len(g.tensors) - 1
    for op in g.operators[after_op + 1 :]:
        op.inputs = [new if i == src else i for i in op.inputs]
    if src in list(g.outputs):
        g.outputs = [new if i == src else i for i in g.outputs]
    q = s.OperatorT()
    q.opcodeIndex = _opcode_index(m, 114)
    q.inputs = [src]
    q.outputs = [new]
    q.builtinOptionsType = 0
    g.operators.insert(after_op + 1, q)
    return _pack(m)


_CACHE: dict[str, bytes] = {}


def tflite_for(name: str) -> bytes:
    """The converted full-int8 model `build_<name>`, converted once per test session."""
    if name not in _CACHE:
        import warnings

        model, shape = globals()[f"build_{name}"]()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            _CACHE[name] = convert_int8(model, shape)
    return _CACHE[name]


def build_reshape_only():
    """Only a reshape: generated code is a copy from input to output."""
    tf, keras = _keras()
    L = keras.layers
    m = keras.Sequential([keras.Input((12,)), L.Reshape((3, 4))])
    return _wrap(keras, m, (12,)), (12,)


def with_per_tensor_fc(tfl: bytes) -> bytes:
    """Make every FULLY_CONNECTED per-tensor quantized (one weight scale, TFLM's other path)."""
    m = _unpack(tfl)
    g = m.subgraphs[0]
    fc = _opcode_index(m, 9)
    n = 0
    for op in g.operators:
        if op.opcodeIndex != fc:
            continue
        w = g.tensors[op.inputs[1]].quantization
        s = float(max(w.scale))
        w.scale, w.zeroPoint, w.quantizedDimension = [s], [0], 0
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = g.tensors[op.inputs[2]].quantization
            s_in = float(g.tensors[op.inputs[0]].quantization.scale[0])
            b.scale, b.zeroPoint, b.quantizedDimension = [s_in * s], [0], 0
        n += 1
    assert n, "no FULLY_CONNECTED op"
    return _pack(m)
