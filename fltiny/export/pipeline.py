"""``fltiny export``: from a zoo model (trained on the spot) or a user's .keras file to a
verified bundle. Every step reports through ``progress``; every failure is a FltinyError."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.codegen.check import CCheck
from fltiny.codegen.generator import CodegenResult
from fltiny.data.base import Normalization
from fltiny.errors import ExportError, UsageError
from fltiny.export.bundle import Manifest
from fltiny.export.inspect import SUPPORTED_OPS, TfliteSummary
from fltiny.export.split import SplitModel
from fltiny.export.verify import InterpreterAgreement, QuantAgreement

DEFAULT_MAX_SIZE = 200 * 1024
HEAD_ORDER = "per layer: W row-major [out][in], then b[out]; float32 little-endian"
HEAD_ORDER_TAIL = ("per layer: dense W row-major [out][in], then b[out]; conv1d W [out_ch][kernel]"
                   "[in_ch], then b[out_ch]; gap1d none; float32 little-endian")
C_CHECK_SAMPLES = 500
Progress = Callable[[str], None]


def parse_size(text: str) -> int:
    """'200kB', '200k', '0.5MB', '4096' -> bytes (k = 1024)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)[iI]?[bB]?\s*", text)
    if not m:
        raise UsageError(f"cannot read size '{text}'; write e.g. 200kB, 64k or 65536")
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


@dataclass(frozen=True)
class ModelSource:
    """The Keras model to export and what it was trained on."""

    model: Any
    name: str
    task: str
    head_layers: int
    normalization: Normalization
    class_names: tuple[str, ...]
    n_outputs: int
    train_convs: int = 0  # last N Conv1D layers trained on the device in float32 (the tail)


@dataclass(frozen=True)
class EvalData:
    """Normalised representative inputs, and optional labelled held-out data."""

    representative: np.ndarray
    x: np.ndarray
    y: np.ndarray | None


@dataclass(frozen=True)
class ExportResult:
    out: Path
    files: list[Path]
    manifest: Manifest
    backbone_bytes: int
    head_bytes: int
    tflm: InterpreterAgreement | None
    quant: QuantAgreement
    c_check: CCheck | None = None

    @property
    def total_bytes(self) -> int:
        return self.backbone_bytes + self.head_bytes


def generate_backbone_c(bundle_dir: Path) -> tuple[list[Path], CodegenResult]:
    """Render the bundle's backbone as C (``c/backbone.h``, ``c/backbone.c``)."""
    from fltiny.codegen import generate
    from fltiny.export.bundle import BACKBONE

    result = generate(bundle_dir / BACKBONE, bundle_dir / "c", prefix="backbone")
    return [result.header, result.source], result


def load_keras_file(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not a Keras model file (.keras archive)")
    from fltiny.tf import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise UsageError(f"cannot load Keras model {path}: {str(exc).splitlines()[0]}") from exc


def load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise UsageError(f"{what} file {path} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"{what} file {path} is not a .npy array: {exc}") from exc
    if arr.size == 0:
        raise UsageError(f"{what} file {path} is empty")
    return arr


def check_input_shape(model: Any, x: np.ndarray, what: str) -> None:
    expected = tuple(model.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise UsageError(
            f"{what} has sample shape {tuple(x.shape[1:])}, the model expects {expected}"
        )


def _budget_error(summary: TfliteSummary | None, split: SplitModel, total: int, limit: int) -> str:
    items: list[tuple[str, int]] = []
    if summary is not None:
        items += [(f"backbone tensor '{t.name}' {list(t.shape)}", t.nbytes)
                  for t in summary.largest_tensors(5)]
    for i, lyr in enumerate(split.head.layers):
        shape = f"{lyr.n_in}x{lyr.n_out}" if lyr.kind == "dense" else lyr.describe()
        items.append((f"head layer {i} ({shape} float32)", 4 * lyr.n_params))
    items.sort(key=lambda it: it[1], reverse=True)
    largest = "; ".join(f"{name} {size} B" for name, size in items[:5])
    return (f"model is {total} bytes, over the size budget of {limit} bytes. Largest: {largest}. "
            "Use a smaller variant or raise --max-size")


def export_model(
    source: ModelSource,
    data: EvalData,
    out: Path,
    max_size: int = DEFAULT_MAX_SIZE,
    progress: Progress = lambda _m: None,
) -> ExportResult:
    from fltiny.export import bundle, convert, inspect, verify
    from fltiny.export.split import split_model

    bundle.prepare_out_dir(out)
    check_input_shape(source.model, data.representative, "representative data")
    check_input_shape(source.model, data.x, "evaluation data")
    split = split_model(source.model, source.head_layers, source.train_convs)
    progress(f"split: backbone up to '{split.feature_layer}', head "
             f"{' -> '.join(lyr.describe() for lyr in split.head.layers)} "
             f"({split.head.n_params} float32 parameters)")

    float_pred = np.asarray(source.model.predict(data.x, batch_size=512, verbose=0))
    backbone = summary = None
    tflm = None
    if split.backbone is not None:
        progress("converting the backbone to full int8 (TFLiteConverter)")
        backbone = convert.to_int8_tflite(split.backbone, data.representative)
        summary = inspect.summarize(backbone)
        bad = summary.unsupported_ops()
        if bad:
            raise ExportError(
                f"unsupported ops in the backbone: {', '.join(bad)}; "
                f"supported: {', '.join(SUPPORTED_OPS)}"
            )
    total = (len(backbone) if backbone else 0) + 4 * split.head.n_params
    if total > max_size:
        raise ExportError(_budget_error(summary, split, total, max_size))

    q_inputs = np.zeros((0,), np.int8)
    if backbone is not None and summary is not None:
        in_q = (summary.input.scale, summary.input.zero_point)
        out_q = (summary.output.scale, summary.output.zero_point)
        progress(f"verifying on {len(data.x)} samples: TFLM against LiteRT, int8 against float")
        q_inputs, features = verify.int8_features(backbone, data.x, in_q, out_q)
        tflm = verify.tflm_vs_litert(backbone, q_inputs)
        int8_pred = verify.head_predictions(split.head, features)
    else:
        int8_pred = split.head.forward(data.x)
    quant = verify.int8_vs_float(float_pred, int8_pred, data.y, source.task)

    manifest = Manifest(
        model=source.name,
        task=source.task,
        input_shape=[int(d) for d in source.model.inputs[0].shape[1:]],
        n_outputs=source.n_outputs,
        class_names=list(source.class_names),
        normalization={"mean": list(source.normalization.mean),
                       "std": list(source.normalization.std)},
        backbone=None if summary is None else {
            "file": bundle.BACKBONE,
            "bytes": summary.size,
            "ops": list(summary.ops),
            "input": asdict(summary.input),
            "output": asdict(summary.output),
            "feature_layer": split.feature_layer,
            "parameters": int(split.backbone.count_params()),
            "tensors": [asdict(t) for t in summary.tensors],
        },
        head={
            "file": bundle.HEAD,
            "layers": [lyr.to_manifest() for lyr in split.head.layers],
            "params": split.head.n_params,
            "bytes": 4 * split.head.n_params,
            "order": (HEAD_ORDER_TAIL if split.head.has_geometry else HEAD_ORDER),
        },
        checks={
            "max_size": max_size,
            "total_bytes": total,
            "tflm_vs_litert": None if tflm is None else {**asdict(tflm), "rate": tflm.mismatch_rate},
            "int8_vs_float": asdict(quant),
        },
    )
    files = bundle.write_bundle(out, manifest, split.head, backbone)
    c_check = None
    if backbone is not None and summary is not None:
        progress("generating the ahead-of-time C backbone and checking it against TFLM")
        c_files, codegen = generate_backbone_c(out)
        files += c_files
        from fltiny.codegen.check import compare_with_tflm

        c_check = compare_with_tflm(backbone, out / "c", q_inputs[:C_CHECK_SAMPLES])
        manifest.backbone["codegen"] = {"arena_bytes": codegen.arena_bytes,
                                        "const_bytes": codegen.const_bytes,
                                        "calls": codegen.ops}
        manifest.checks["c_vs_tflm"] = asdict(c_check)
        if c_check.mismatches:
            raise ExportError(f"{c_check}: the generated C is not bit-exact, a codegen bug")
    files.append(bundle.write_manifest(out, manifest, files))
    return ExportResult(out, files, manifest, len(backbone) if backbone else 0,
                        4 * split.head.n_params, tflm, quant, c_check)
