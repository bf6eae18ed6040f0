"""The device data blob: one device's local windows, int8-quantized for its model.

Format, version 1 (little-endian; C parser firmware/app/flt_data.c; docs/boards.md):

    offset size
     0  4  magic b"FLTD"
     4  2  version = 1
     6  2  header size = 48
     8  4  device id (the protocol device id of the board that carries it)
    12  4  count: number of windows
    16  2  window length (time steps)      18  2  channels
    20  1  target kind: 0 int32 labels, 1 float32 targets
    21  1  targets per window (1 for labels)
    22  2  reserved, 0
    24  4  float32 input scale             28  4  int32 input zero point
    32  8  model hash: first 8 bytes of sha256(backbone.tflite)
    40  4  CRC-32 (IEEE, zlib.crc32) of every byte after the header
    44  4  n_test: the last n_test windows are the device's personal test split (< count)
    48     int8 windows [count][window length][channels], zero padding to a multiple of 4,
           then int32 labels [count] or float32 targets [count][targets per window]

Windows are normalised with the manifest's statistics, then quantized with the bundle's input
scale and zero point (round half away from zero, clamp to [-128, 127]: TFLite's rule). QEMU
boards get the blob at a fixed address through `-device loader`; native boards as a file.

A device without a blob collects its own windows through the sensor hook (docs/boards.md
"Sensor hook", "Window store"). On the emulated boards a ``Recording`` stands in for the sensor:
samples (time steps) and their labels, which the port replays through the hook at a pace
(C reader firmware/app/flt_recording.c). Format, version 1 (little-endian, the blob's header
where a field means the same):

    offset size
     0  4  magic b"FLTR"
     4  2  version = 1                     6  2  header size = 48
     8  4  device id                       12 4  count: number of samples (time steps)
    16  2  reserved, 0                     18 2  channels (int8 values per sample)
    20  1  target kind: 0 int32 labels, 1 float32 targets
    21  1  targets per sample (1 for labels)                 22 2  reserved, 0
    24  4  float32 input scale             28 4  int32 input zero point
    32  8  model hash                      40 4  CRC-32 of every byte after the header
    44  4  samples per second: the pace of the replay (0: every sample at once)
    48     int8 samples [count][channels], zero padding to a multiple of 4, then int32 labels
           [count] (-1: a step without a label) or float32 targets [count][targets per sample]

The personal test split of a device's windows (``personal_n_test``) is the C rule
(flt_data_n_test, firmware/app/flt_data.h) that the window store uses too.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fltiny.errors import UsageError

MAGIC = b"FLTD"
VERSION = 1
HEADER = struct.Struct("<4sHHIIHHBBHfi8sII")
HEADER_SIZE = 48
assert HEADER.size == HEADER_SIZE
RECORDING_MAGIC = b"FLTR"
RECORDING_HEADER = HEADER  # the same layout: window length -> reserved 0, n_test -> pace


def window_shape(shape: tuple[int, ...] | list[int]) -> tuple[int, int]:
    """A model input's shape (no batch) -> (time steps, channels) of its windows: one feature
    vector (thermostat) is a window of one step; images [h, w, c] are h*w steps of c."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 1:
        return 1, dims[0]
    if len(dims) == 2:
        return dims[0], dims[1]
    if not dims:
        raise UsageError("a model input needs at least one dimension")
    return int(np.prod(dims[:-1])), dims[-1]


def _body(values: bytes, count: int, labels: np.ndarray | None,
          targets: np.ndarray | None) -> tuple[bytes, int, int]:
    """(body, target kind, targets per entry) of a data blob or a recording: the int8 values
    zero-padded to 4 bytes, then int32 labels (kind 0) or float32 targets (kind 1)."""
    body = values + b"\0" * ((-len(values)) % 4)
    if labels is not None:
        return body + np.asarray(labels, dtype="<i4").reshape(count).tobytes(), 0, 1
    t = np.asarray(targets, dtype="<f4").reshape(count, -1)
    return body + t.tobytes(), 1, t.shape[1]


@dataclass
class DataBlob:
    device_id: int
    windows: np.ndarray  # int8 [count, window_len, channels]
    labels: np.ndarray | None  # int32 [count]
    targets: np.ndarray | None  # float32 [count, n_targets]
    input_scale: float
    input_zero_point: int
    model_hash: bytes
    n_test: int = 0  # the last n_test windows: the personal test split (never trained on)

    @property
    def n_train(self) -> int:
        return int(self.windows.shape[0]) - self.n_test

    def limited(self, max_train: int) -> DataBlob:
        """This blob with at most max_train training windows (its first ones) and the whole
        personal test split: what a board with FLT_APP_MAX_WINDOWS = max_train gets."""
        return self._pick(np.r_[0:min(self.n_train, max_train), self.n_train:len(self.windows)],
                          self.n_test)

    def training(self, n: int) -> DataBlob:
        """Its first n training windows only, no personal test split (the self-test and the
        benchmark firmware train on every window of their blob)."""
        return self._pick(np.arange(min(n, self.n_train)), 0)

    def _pick(self, keep: np.ndarray, n_test: int) -> DataBlob:
        return DataBlob(self.device_id, self.windows[keep],
                        None if self.labels is None else self.labels[keep],
                        None if self.targets is None else self.targets[keep],
                        self.input_scale, self.input_zero_point, self.model_hash, n_test)

    def encode(self) -> bytes:
        w = np.ascontiguousarray(self.windows, dtype=np.int8)
        if w.ndim >= 2:  # [count, *input shape] -> [count, steps, channels] (window_shape)
            w = w.reshape(w.shape[0], *window_shape(w.shape[1:]))
        if w.ndim != 3 or w.shape[0] == 0:
            raise UsageError(f"data blob windows must be [count, steps, channels], got {w.shape}")
        count = w.shape[0]
        if not 0 <= self.n_test < count:
            raise UsageError(f"data blob: {self.n_test} test windows of {count}; need 0 <= n_test "
                             "< count")
        body, kind, n_t = _body(w.tobytes(), count, self.labels, self.targets)
        head = HEADER.pack(MAGIC, VERSION, HEADER_SIZE, self.device_id, count, w.shape[1], w.shape[2],
                           kind, n_t, 0, self.input_scale, self.input_zero_point,
                           self.model_hash[:8].ljust(8, b"\0"), zlib.crc32(body), self.n_test)
        return head + body


def quantize_windows(x: np.ndarray, manifest) -> np.ndarray:
    """Raw float windows -> the backbone's int8 input (manifest normalisation, input quant)."""
    from fltiny.export.quant import quantize

    mean = np.asarray(manifest.normalization["mean"], dtype=np.float32)
    std = np.asarray(manifest.normalization["std"], dtype=np.float32)
    xn = ((x.astype(np.float32) - mean) / std).astype(np.float32)
    inp = manifest.backbone["input"]
    return quantize(xn, inp["scale"], inp["zero_point"])


PERSONAL_TEST_FRACTION = 0.3


def personal_n_test(n: int, fraction: float = PERSONAL_TEST_FRACTION) -> int:
    """How many of a device's n windows (in time order) are its personal test split: the
    device's own rule (flt_data_n_test through fltiny/native, so a blob's split and the
    window store's are the same C): n * fraction rounded half to even (fraction in parts per
    million), at least 1 and at most n - 1 when n >= 2."""
    from fltiny.native.store import n_test

    return n_test(n, round(fraction * 1_000_000))


def personal_split(idx: np.ndarray, fraction: float = PERSONAL_TEST_FRACTION
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A device's samples (dataset indices, in time order) -> (training, personal test): the
    last `fraction` of its windows in time order are its personal test split, never trained
    on (at least one window of each when there are two or more; ``personal_n_test``)."""
    idx = np.sort(np.asarray(idx))
    n_test = personal_n_test(len(idx), fraction)
    return idx[: len(idx) - n_test], idx[len(idx) - n_test :]


def _fleet_parts(bundle: Path, n_devices: int, dataset: str | None, scheme: str, alpha: float,
                 seed: int, what: str):
    """(manifest, fleet split, the devices' sample indices, model hash, task) of
    ``fleet_blobs`` and ``fleet_recordings``: the one partition of the dataset's fleet both
    use."""
    from fltiny.data import load_dataset
    from fltiny.data.partition import partition
    from fltiny.export.bundle import read_bundle

    manifest, _head, backbone = read_bundle(Path(bundle))
    if backbone is None:
        raise UsageError(f"the bundle has no backbone; {what} feed the int8 backbone")
    ds = load_dataset(dataset or _dataset_of(manifest), fleet=n_devices)  # thermostat: N homes
    fleet = ds.fleet()
    parts = partition(scheme, fleet.y, fleet.groups, n_devices,  # type: ignore[arg-type]
                      clients=ds.scenario.fleet, alpha=alpha, seed=seed)
    if len(parts) < n_devices:
        raise UsageError(f"the {ds.name} fleet has {len(parts)} devices' worth of data; "
                         f"asked for {n_devices}")
    return manifest, fleet, parts, hashlib.sha256(backbone).digest()[:8], ds.task


def fleet_blobs(bundle: Path, n_devices: int, *, dataset: str | None = None,
                scheme: str = "natural", first_device_id: int = 1, alpha: float = 0.5,
                seed: int = 0, max_windows: int | None = None,
                personal_fraction: float = PERSONAL_TEST_FRACTION) -> list[DataBlob]:
    """One blob per device from the dataset's fleet groups. `natural` (default): device i gets
    fleet user/home i (HAPT: users 11-25); `iid` / `dirichlet` split the fleet samples.
    Each blob holds the device's training windows (seeded shuffle; at most max_windows) and
    then its personal test split: the last `personal_fraction` of its windows in time order."""
    manifest, fleet, parts, mhash, task = _fleet_parts(bundle, n_devices, dataset, scheme, alpha,
                                                       seed, "data blobs")
    inp = manifest.backbone["input"]
    blobs = []
    for i, part in enumerate(parts[:n_devices]):
        train, test = personal_split(part, personal_fraction)
        # a seeded shuffle, so the max_windows windows a small board trains on mix classes
        train = np.random.default_rng(seed + first_device_id + i).permutation(train)
        train = train[:max_windows] if max_windows else train
        idx = np.concatenate([train, test])
        q = quantize_windows(fleet.x[idx], manifest)
        y = fleet.y[idx]
        labels = y.astype(np.int32) if task == "classification" else None
        targets = None if labels is not None else y.astype(np.float32).reshape(len(idx), -1)
        blobs.append(DataBlob(first_device_id + i, q, labels, targets, float(inp["scale"]),
                              int(inp["zero_point"]), mhash, len(test)))
    return blobs


def _dataset_of(manifest) -> str:
    from fltiny.models import ZOO

    m = ZOO.get(manifest.model)
    if m is None:
        raise UsageError(f"model '{manifest.model}' is not in the zoo: pass the dataset explicitly")
    return m.dataset


@dataclass
class Recording:
    """Samples (time steps) with the application's labels, replayed through a board's sensor
    hook in place of a sensor (format: the module docstring). ``samples`` int8 [count,
    channels] in the model's input quantization; ``labels`` int32 [count] (-1: unlabelled) or
    ``targets`` float32 [count, n_targets]; ``samples_per_second`` paces the replay (0: all at
    once, so the device holds every window before its first round)."""

    device_id: int
    samples: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    input_scale: float
    input_zero_point: int
    model_hash: bytes
    samples_per_second: int = 0

    @classmethod
    def from_windows(cls, blob: DataBlob, samples_per_second: int = 0) -> Recording:
        """The samples of a blob's windows one after the other, in the blob's order, every
        step labelled with its window's label: a board cutting disjoint windows of the blob's
        length (stride = window length) collects exactly the blob's windows."""
        w = np.ascontiguousarray(blob.windows, dtype=np.int8)
        w = w.reshape(w.shape[0], *window_shape(w.shape[1:]))
        steps = w.shape[1]
        labels = targets = None
        if blob.labels is not None:
            labels = np.repeat(np.asarray(blob.labels, np.int32), steps)
        else:
            t = np.asarray(blob.targets, np.float32).reshape(w.shape[0], -1)
            targets = np.repeat(t, steps, axis=0)
        return cls(blob.device_id, w.reshape(-1, w.shape[2]), labels, targets, blob.input_scale,
                   blob.input_zero_point, blob.model_hash, samples_per_second)

    def encode(self) -> bytes:
        s = np.ascontiguousarray(self.samples, dtype=np.int8)
        if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
            raise UsageError(f"recording samples must be [count, channels], got {s.shape}")
        count = s.shape[0]
        body, kind, n_t = _body(s.tobytes(), count, self.labels, self.targets)
        if not 0 <= self.samples_per_second < 1 << 32:
            raise UsageError(f"recording pace {self.samples_per_second} samples/s is out of range")
        head = RECORDING_HEADER.pack(RECORDING_MAGIC, VERSION, HEADER_SIZE, self.device_id, count, 0,
                                     s.shape[1], kind, n_t, 0, self.input_scale,
                                     self.input_zero_point, self.model_hash[:8].ljust(8, b"\0"),
                                     zlib.crc32(body), self.samples_per_second)
        return head + body


def fleet_recordings(bundle: Path, n_devices: int, *, samples_per_second: int = 0,
                     dataset: str | None = None, scheme: str = "natural",
                     first_device_id: int = 1, alpha: float = 0.5, seed: int = 0) -> list[Recording]:
    """One recording per device from the same fleet partition as ``fleet_blobs``: every
    window of the device in time order (the order its sensor would have seen them), as
    samples; the device draws its own personal test split from what it collects."""
    manifest, fleet, parts, mhash, task = _fleet_parts(bundle, n_devices, dataset, scheme, alpha,
                                                       seed, "recordings")
    inp = manifest.backbone["input"]
    out = []
    for i, part in enumerate(parts[:n_devices]):
        idx = np.sort(np.asarray(part))
        q = quantize_windows(fleet.x[idx], manifest)
        y = fleet.y[idx]
        labels = y.astype(np.int32) if task == "classification" else None
        targets = None if labels is not None else y.astype(np.float32).reshape(len(idx), -1)
        blob = DataBlob(first_device_id + i, q, labels, targets, float(inp["scale"]),
                        int(inp["zero_point"]), mhash)
        out.append(Recording.from_windows(blob, samples_per_second))
    return out


@dataclass(frozen=True)
class DeviceDataStatus:
    """A device's answer to STATUS (firmware/app/flt_device.h): where its windows come from
    (``source`` "blob", "store" or "none"), the model it serves (``serving``: "factory",
    "global" or "personal"; ``training``: "on", or "off" while the host has disabled it) and its
    counters; counters the text lacks are 0, words it lacks "". ``stack``: the deepest stack use
    since boot in bytes, on boards that paint their stack (the QEMU boards; 0 elsewhere)."""

    source: str
    serving: str = ""
    training: str = ""
    count: int = 0
    capacity: int = 0
    test: int = 0
    samples: int = 0
    windows: int = 0
    stored: int = 0
    rejected: int = 0
    dropped: int = 0
    stack: int = 0

    @classmethod
    def parse(cls, text: str) -> DeviceDataStatus:
        source, *fields = text.split() or [""]
        if source not in ("blob", "store", "none"):
            raise UsageError(f"not a device data STATUS: {text!r}")
        values: dict[str, int | str] = {}
        for f in fields:
            name, _, value = f.partition("=")
            if name in ("serving", "training"):
                values[name] = value
            elif name in cls.__dataclass_fields__ and value.isdigit():
                values[name] = int(value)
        return cls(source, **values)  # type: ignore[arg-type]
