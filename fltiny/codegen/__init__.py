"""fltiny.codegen: ahead-of-time C for full-int8 TFLite models, bit-exact with TFLM.

`generate(tflite, out_dir, prefix="backbone")` reads the flatbuffer (own reader, no TensorFlow),
lowers each operator to a call of the int8 reference kernels in firmware/runtime/kernels/,
plans one static arena from tensor lifetimes and renders `<prefix>.h` / `<prefix>.c` from
templates/model.h.j2 and templates/model.c.j2.
"""

from .generator import CodegenResult, generate
from .nodes import SUPPORTED_OPS
from .tflite_model import read_tflite

__all__ = ["CodegenResult", "SUPPORTED_OPS", "generate", "read_tflite"]
