"""The device's own data on the host: the window store, the recording reader and the personal
split rule of firmware/app (flt_window_store.c, flt_recording.c, flt_data.c, flt_sample.c),
compiled into one shared library and called through ctypes, so the host's split and the
tests' windows are the device's C, never a second implementation.

- ``n_test(n, ppm)``: flt_data_n_test, the personal test split of n windows (the blob writer
  fltiny.devices.data.personal_split uses it);
- ``WindowStore``: a flt_window_store_t over numpy buffers (push samples, read the counters,
  take the round's view);
- ``parse_recording`` / ``recording_samples``: flt_recording_parse / flt_recording_sample;
- ``quantize_sample``: flt_sample_quantize (a raw reading -> the model's int8 input).
Failures raise RuntimeStatusError with the C status.
"""

from __future__ import annotations

import ctypes as C
from dataclasses import dataclass
from functools import cache

import numpy as np

from fltiny.native import abi
from fltiny.native.build import REPO_ROOT, build_shared_library
from fltiny.native.status import check

APP_DIR = REPO_ROOT / "firmware" / "app"
SOURCES = ("flt_window_store.c", "flt_recording.c", "flt_data.c", "flt_sample.c")
MAX_TARGETS = 4  # FLT_SAMPLE_MAX_TARGETS (checked against the C at load)
LABELS, TARGETS = 0, 1  # FLT_DATA_LABELS, FLT_DATA_TARGETS
UNLABELLED = -1  # FLT_SAMPLE_UNLABELLED

u8, u32, i32, f32, sz, vp = C.c_uint8, C.c_uint32, C.c_int32, C.c_float, C.c_size_t, C.c_void_p


class SampleLabel(C.Structure):
    _fields_ = [("label", i32), ("targets", f32 * MAX_TARGETS)]


class StoreCfg(C.Structure):
    _fields_ = [(n, u32) for n in ("window_len", "channels", "stride", "capacity", "target_kind",
                                   "n_targets", "n_classes")]


class StoreStats(C.Structure):
    _fields_ = [(n, u32) for n in ("samples", "windows", "stored", "rejected", "dropped", "count",
                                   "capacity")]


class Store(C.Structure):
    _fields_ = [("cfg", StoreCfg), ("window_bytes", u32), ("windows", vp), ("labels", vp),
                ("targets", vp), ("assembly", vp), ("fill", u32), ("head", u32),
                ("run_label", i32), ("run_len", u32), ("last_targets", f32 * MAX_TARGETS),
                ("last_ok", i32), ("stats", StoreStats)]


class Data(C.Structure):  # flt_data_t (firmware/app/flt_data.h)
    _fields_ = [("device_id", u32), ("count", u32), ("n_test", u32), ("window_len", u32),
                ("channels", u32), ("window_bytes", u32), ("target_kind", u32), ("n_targets", u32),
                ("input_scale", f32), ("input_zero_point", i32), ("model_hash", u8 * 8),
                ("windows", vp), ("labels", vp), ("targets", vp), ("total_bytes", sz)]


class RecordingHeader(C.Structure):  # flt_recording_t (firmware/app/flt_recording.h)
    _fields_ = [("device_id", u32), ("count", u32), ("channels", u32), ("target_kind", u32),
                ("n_targets", u32), ("samples_per_second", u32), ("input_scale", f32),
                ("input_zero_point", i32), ("model_hash", u8 * 8), ("samples", vp),
                ("labels", vp), ("targets", vp), ("total_bytes", sz)]


MIRRORS: abi.Mirrors = {
    "flt_sample_label_t": SampleLabel, "flt_window_store_cfg_t": StoreCfg,
    "flt_window_store_stats_t": StoreStats, "flt_window_store_t": Store, "flt_data_t": Data,
    "flt_recording_t": RecordingHeader,
}
HEADERS = ("flt_window_store.h", "flt_recording.h")
CONSTANTS = ("FLT_SAMPLE_MAX_TARGETS", "FLT_DATA_LABELS", "FLT_DATA_TARGETS",
             "FLT_SAMPLE_UNLABELLED", "FLT_DATA_PERSONAL_PPM", "FLT_RECORDING_HEADER_SIZE")

P = C.POINTER
_PROTOTYPES: dict[str, tuple[object, list]] = {
    "flt_data_n_test": (u32, [u32, u32]),
    "flt_window_store_init": (C.c_int, [P(Store), P(StoreCfg), vp, sz, vp, sz, vp, sz, vp, sz]),
    "flt_window_store_push": (C.c_int, [P(Store), vp, P(SampleLabel)]),
    "flt_window_store_view": (C.c_int, [P(Store), P(Data)]),
    "flt_recording_parse": (C.c_int, [vp, sz, P(RecordingHeader)]),
    "flt_recording_sample": (C.c_int, [P(RecordingHeader), u32, vp, P(SampleLabel)]),
    "flt_sample_quantize": (None, [vp, u32, vp, vp, f32, i32, vp]),
}


@cache
def _loaded() -> tuple[C.CDLL, dict[str, int]]:
    table_c = abi.abi_source(MIRRORS, HEADERS, CONSTANTS)
    lib = C.CDLL(str(build_shared_library(
        ["proto"], extra_sources=[*(APP_DIR / f for f in SOURCES), table_c],
        include_dirs=[APP_DIR], name="fltstore")))
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    tab = abi.check(lib, MIRRORS, "fltiny/native/store.py")
    expect = {"FLT_SAMPLE_MAX_TARGETS": MAX_TARGETS, "FLT_DATA_LABELS": LABELS,
              "FLT_DATA_TARGETS": TARGETS, "FLT_SAMPLE_UNLABELLED": UNLABELLED & 0xFFFFFFFFFFFFFFFF}
    wrong = {k: tab[k] for k, v in expect.items() if tab[k] != v}
    if wrong:
        from fltiny.errors import ToolchainError

        raise ToolchainError(f"fltiny/native/store.py constants differ from the C: {wrong}")
    return lib, tab


def lib() -> C.CDLL:
    return _loaded()[0]


def const(name: str) -> int:
    return _loaded()[1][name]


def n_test(n: int, fraction_ppm: int) -> int:
    """flt_data_n_test: the personal test split of n windows in time order (flt_data.h)."""
    if not (0 <= n < 1 << 32 and 0 <= fraction_ppm < 1 << 32):
        raise ValueError(f"n ({n}) and fraction_ppm ({fraction_ppm}) must fit in 32 bits")
    return int(lib().flt_data_n_test(n, fraction_ppm))


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


@dataclass(frozen=True)
class StoreView:
    """The store's windows as the round sees them (copies): oldest first, the last n_test the
    personal test split."""

    windows: np.ndarray  # int8 [count, window_len, channels]
    labels: np.ndarray | None  # int32 [count]
    targets: np.ndarray | None  # float32 [count, n_targets]
    n_test: int


class WindowStore:
    """A flt_window_store_t over buffers owned by this object (see flt_window_store.h)."""

    def __init__(self, *, window_len: int, channels: int, capacity: int, stride: int | None = None,
                 n_classes: int = 0, n_targets: int | None = None) -> None:
        self.cfg = StoreCfg(window_len, channels, window_len if stride is None else stride,
                            capacity, LABELS if n_targets is None else TARGETS,
                            1 if n_targets is None else n_targets, n_classes)
        wb = window_len * channels
        self._windows = np.zeros(max(1, capacity * wb), np.int8)
        self._labels = np.zeros(max(1, capacity), np.int32)
        self._targets = np.zeros(max(1, capacity * (n_targets or 1)), np.float32)
        self._assembly = np.zeros(max(1, wb), np.int8)
        self._store = Store()
        labelled = n_targets is None
        s = lib().flt_window_store_init(
            C.byref(self._store), C.byref(self.cfg), _ptr(self._windows), capacity * wb,
            _ptr(self._labels) if labelled else None, capacity if labelled else 0,
            None if labelled else _ptr(self._targets), 0 if labelled else capacity * n_targets,
            _ptr(self._assembly), wb)
        check("flt_window_store_init", s)

    def push(self, values: np.ndarray, label: int = 0, targets: np.ndarray | None = None) -> None:
        v = np.ascontiguousarray(values, dtype=np.int8).reshape(self.cfg.channels)
        lab = SampleLabel()
        lab.label = int(label)
        if targets is not None:
            for k, t in enumerate(np.asarray(targets, np.float32).reshape(-1)):
                lab.targets[k] = float(t)
        check("flt_window_store_push", lib().flt_window_store_push(
            C.byref(self._store), _ptr(v), C.byref(lab)))

    def push_samples(self, samples: np.ndarray, labels: np.ndarray | None = None,
                     targets: np.ndarray | None = None) -> None:
        """Every sample of [count, channels] with its label (or targets row), in order."""
        s = np.ascontiguousarray(samples, dtype=np.int8).reshape(-1, self.cfg.channels)
        for i in range(s.shape[0]):
            self.push(s[i], 0 if labels is None else int(labels[i]),
                      None if targets is None else targets[i])

    @property
    def stats(self) -> StoreStats:
        st = StoreStats()
        C.pointer(st)[0] = self._store.stats
        return st

    def view(self) -> StoreView:
        d = Data()
        check("flt_window_store_view", lib().flt_window_store_view(C.byref(self._store), C.byref(d)))
        n, wl, ch = d.count, d.window_len, d.channels
        win = np.ctypeslib.as_array(C.cast(d.windows, P(C.c_int8)), (n * wl * ch,))
        labels = targets = None
        if d.labels:
            labels = np.ctypeslib.as_array(C.cast(d.labels, P(i32)), (n,)).copy()
        else:
            targets = np.ctypeslib.as_array(C.cast(d.targets, P(f32)), (n * d.n_targets,))
            targets = targets.reshape(n, d.n_targets).copy()
        return StoreView(win.reshape(n, wl, ch).copy(), labels, targets, int(d.n_test))


def parse_recording(raw: bytes) -> tuple[RecordingHeader, np.ndarray]:
    """flt_recording_parse on a 4-byte aligned copy of ``raw``; returns the parsed header and
    the aligned buffer its pointers point into (keep it alive while using them)."""
    buf = np.zeros((len(raw) + 3) // 4 + 1, np.uint32)
    buf.view(np.uint8)[: len(raw)] = np.frombuffer(raw, np.uint8)
    hdr = RecordingHeader()
    check("flt_recording_parse", lib().flt_recording_parse(_ptr(buf), len(raw), C.byref(hdr)))
    return hdr, buf


def recording_samples(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sample of a recording as the device's port reads it (flt_recording_sample):
    (values int8 [count, channels], labels int32 [count], targets float32 [count, 4])."""
    hdr, buf = parse_recording(raw)
    values = np.zeros((hdr.count, hdr.channels), np.int8)
    labels = np.zeros(hdr.count, np.int32)
    targets = np.zeros((hdr.count, MAX_TARGETS), np.float32)
    lab = SampleLabel()
    for i in range(hdr.count):
        check("flt_recording_sample", lib().flt_recording_sample(
            C.byref(hdr), i, _ptr(values[i]), C.byref(lab)))
        labels[i] = lab.label
        targets[i] = np.ctypeslib.as_array(lab.targets)
    return values, labels, targets


def quantize_sample(raw: np.ndarray, mean: np.ndarray, std: np.ndarray, scale: float,
                    zero_point: int) -> np.ndarray:
    """flt_sample_quantize on each row of raw [n, channels] (float32)."""
    x = np.ascontiguousarray(raw, dtype=np.float32)
    x = x.reshape(-1, x.shape[-1])
    m = np.ascontiguousarray(mean, dtype=np.float32).reshape(x.shape[1])
    s = np.ascontiguousarray(std, dtype=np.float32).reshape(x.shape[1])
    out = np.zeros(x.shape, np.int8)
    for i in range(x.shape[0]):
        lib().flt_sample_quantize(_ptr(x[i]), x.shape[1], _ptr(m), _ptr(s), float(np.float32(scale)),
                                  int(zero_point), _ptr(out[i]))
    return out
