"""The export bundle: files, manifest and C headers.

Layout of a bundle directory::

    backbone.tflite     full-int8 backbone (absent when the whole model is the head)
    head.bin            head parameters, float32 little-endian, device order
    manifest.json       shapes, quantization, sizes, parameter counts, checks, sha256 of files
    include/backbone_tflite.h   the flatbuffer as an aligned const array
    include/head_init.h         the head's shapes, normalisation and initial weights

``Bundle.load(path)`` reads and checks one (every consumer goes through it or ``read_bundle``);
``Bundle.model_hash`` is the 8-byte backbone hash devices report in HELLO and data blobs carry,
``Bundle.content_hash`` identifies the whole export (firmware caches are keyed by it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fltiny import __version__
from fltiny.errors import ExportError, UsageError
from fltiny.export.split import GEOMETRY, LAYER_KINDS, Head, HeadLayer
from fltiny.outdir import prepare_out_dir
from fltiny.templating import render

MANIFEST = "manifest.json"
BACKBONE = "backbone.tflite"
HEAD = "head.bin"
FORMAT_VERSION = 1
MODEL_HASH_BYTES = 8  # the model hash in HELLO and in data blobs


@dataclass
class Manifest:
    model: str
    task: str
    input_shape: list[int]
    n_outputs: int
    class_names: list[str]
    normalization: dict[str, list[float]]
    backbone: dict[str, Any] | None
    head: dict[str, Any]
    checks: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # path -> sha256
    fltiny_version: str = __version__
    format_version: int = FORMAT_VERSION

    def head_spec(self) -> Head:
        layers = tuple(HeadLayer(**lyr) for lyr in self.head["layers"])
        return Head(layers, np.zeros(self.head["params"], dtype=np.float32))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_hash(backbone: bytes) -> bytes:
    """The model hash a device reports: the first 8 bytes of the backbone's sha256."""
    return hashlib.sha256(backbone).digest()[:MODEL_HASH_BYTES]


def _c_rows(values: list[str], per_line: int) -> list[str]:
    return [", ".join(values[i : i + per_line]) + "," for i in range(0, len(values), per_line)]


def _float_literal(v: float) -> str:
    """A C float literal that reads back as exactly the same float32 (9 significant digits)."""
    value = float(np.float32(v))
    if not np.isfinite(value):
        raise ExportError(f"cannot write non-finite value {value} into a C header")
    return f"{value:.8e}f"


def write_headers(out: Path, manifest: Manifest, head: Head, backbone: bytes | None) -> list[Path]:
    inc = out / "include"
    inc.mkdir(parents=True, exist_ok=True)
    written = []
    if backbone is not None:
        path = inc / "backbone_tflite.h"
        path.write_text(render(
            "bundle_tflite.h.j2",
            guard="FLT_BACKBONE_TFLITE", symbol="flt_backbone_tflite", version=__version__,
            source=BACKBONE, size=len(backbone),
            sha256=hashlib.sha256(backbone).hexdigest(),
            rows=_c_rows([f"0x{b:02x}" for b in backbone], 16),
        ))
        written.append(path)
    feat = manifest.backbone["output"] if manifest.backbone else {"scale": 1.0, "zero_point": 0}
    inp = manifest.backbone["input"] if manifest.backbone else {"scale": 1.0, "zero_point": 0}
    path = inc / "head_init.h"
    # dense-only heads render exactly as before the layer kinds (no geometry tables)
    geometry = [("kind", [LAYER_KINDS[lyr.kind] for lyr in head.layers])] + [
        (g, [getattr(lyr, g) for lyr in head.layers]) for g in GEOMETRY
    ] if head.has_geometry else []
    path.write_text(render(
        "bundle_head.h.j2",
        version=__version__, model=manifest.model, layers=[asdict(lyr) for lyr in head.layers],
        activations=[1 if lyr.activation == "relu" else 0 for lyr in head.layers],
        n_params=head.n_params, geometry=geometry, kinds=[lyr.kind for lyr in head.layers],
        n_acts=head.n_acts, max_width=head.max_width,
        feature_scale=_float_literal(feat["scale"])[:-1], feature_zero_point=feat["zero_point"],
        input_scale=_float_literal(inp["scale"])[:-1], input_zero_point=inp["zero_point"],
        mean=[_float_literal(v) for v in manifest.normalization["mean"]],
        std=[_float_literal(v) for v in manifest.normalization["std"]],
        rows=_c_rows([_float_literal(v) for v in head.params], 6),
    ))
    written.append(path)
    return written


def write_bundle(out: Path, manifest: Manifest, head: Head, backbone: bytes | None) -> list[Path]:
    """Write the model artifacts (not yet the manifest). Returns the paths written."""
    prepare_out_dir(out)
    written: list[Path] = []
    if backbone is not None:
        (out / BACKBONE).write_bytes(backbone)
        written.append(out / BACKBONE)
    (out / HEAD).write_bytes(head.params.astype("<f4").tobytes())
    written.append(out / HEAD)
    written += write_headers(out, manifest, head, backbone)
    return written


def write_manifest(out: Path, manifest: Manifest, files: list[Path]) -> Path:
    """Record the sha256 of every file of the bundle, then write manifest.json last."""
    manifest.artifacts = {str(p.relative_to(out)): sha256(p) for p in files}
    (out / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return out / MANIFEST


def _reexport(path: Path) -> str:
    return f"re-export it (fltiny export --model <name> --out {path}) or pass another --bundle"


@dataclass(frozen=True)
class Bundle:
    """One checked export bundle: manifest, head (layers + initial parameters), backbone."""

    path: Path
    manifest: Manifest
    head: Head
    backbone: bytes | None

    @classmethod
    def load(cls, path: Path) -> Bundle:
        """Read a bundle: a parseable manifest, a head.bin of the manifest's size, and every
        artifact matching its recorded sha256 (UsageError naming the problem otherwise)."""
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise UsageError(f"{path} is not an export bundle (no {MANIFEST}); run "
                             f"'fltiny export --model <name> --out {path}' first")
        try:
            manifest = Manifest(**json.loads(mpath.read_text()))
            spec = manifest.head_spec()
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError) as exc:
            raise UsageError(f"{mpath} is not a valid fltiny manifest ({exc}); "
                             f"{_reexport(path)}") from exc
        hpath = path / HEAD
        if not hpath.is_file():
            raise UsageError(f"bundle {path} has no {HEAD}; {_reexport(path)}")
        size = hpath.stat().st_size
        if size != 4 * spec.n_params:
            raise UsageError(f"{hpath} is {size} bytes, the manifest's head has {spec.n_params} "
                             f"float32 parameters ({4 * spec.n_params} bytes); {_reexport(path)}")
        for rel, digest in manifest.artifacts.items():
            f = path / rel
            if not f.is_file() or sha256(f) != digest:
                raise UsageError(f"bundle file {f} is missing or does not match its sha256 in "
                                 f"the manifest; {_reexport(path)}")
        raw = np.frombuffer(hpath.read_bytes(), dtype="<f4").astype(np.float32)
        backbone = (path / BACKBONE).read_bytes() if manifest.backbone else None
        return cls(path, manifest, Head(spec.layers, raw), backbone)

    @property
    def name(self) -> str:
        return self.manifest.model

    @property
    def model_hash(self) -> bytes:
        if self.backbone is None:
            raise UsageError(f"bundle {self.path} has no backbone (the whole model is the head)")
        return model_hash(self.backbone)

    @property
    def content_hash(self) -> str:
        """sha256 over the manifest, the head and the backbone (hex)."""
        h = hashlib.sha256()
        for name in (MANIFEST, HEAD, BACKBONE):
            p = self.path / name
            if p.is_file():
                h.update(name.encode() + b"\0" + p.read_bytes())
        return h.hexdigest()


def read_bundle(path: Path) -> tuple[Manifest, Head, bytes | None]:
    """Load a bundle and check every artifact against its recorded sha256 (``Bundle.load``)."""
    b = Bundle.load(path)
    return b.manifest, b.head, b.backbone
