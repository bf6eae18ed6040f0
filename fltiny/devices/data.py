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
        if w.ndim == 2:  # one feature vector per sample (thermostat): a window of one step
            w = w.reshape(w.shape[0], 1, w.shape[1])
        elif w.ndim > 3:  # images [count, h, w, c]: rows of pixels, the blob keeps the bytes
            w = w.reshape(w.shape[0], -1, w.shape[-1])
        if w.ndim != 3 or w.shape[0] == 0:
            raise UsageError(f"data blob windows must be [count, steps, channels], got {w.shape}")
        count = w.shape[0]
        if not 0 <= self.n_test < count:
            raise UsageError(f"data blob: {self.n_test} test windows of {count}; need 0 <= n_test "
                             "< count")
        body = w.tobytes()
        body += b"\0" * ((-len(body)) % 4)
        if self.labels is not None:
            kind, n_t = 0, 1
            body += np.asarray(self.labels, dtype="<i4").reshape(count).tobytes()
        else:
            t = np.asarray(self.targets, dtype="<f4").reshape(count, -1)
            kind, n_t = 1, t.shape[1]
            body += t.tobytes()
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


def personal_split(idx: np.ndarray, fraction: float = PERSONAL_TEST_FRACTION
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A device's samples (dataset indices, in time order) -> (training, personal test): the
    last `fraction` of its windows in time order are its personal test split, never trained
    on (at least one window of each when there are two or more)."""
    idx = np.sort(np.asarray(idx))
    n_test = int(round(len(idx) * fraction))
    if len(idx) >= 2:
        n_test = min(max(n_test, 1 if fraction > 0 else 0), len(idx) - 1)
    else:
        n_test = 0
    return idx[: len(idx) - n_test], idx[len(idx) - n_test :]


def fleet_blobs(bundle: Path, n_devices: int, *, dataset: str | None = None,
                scheme: str = "natural", first_device_id: int = 1, alpha: float = 0.5,
                seed: int = 0, max_windows: int | None = None,
                personal_fraction: float = PERSONAL_TEST_FRACTION) -> list[DataBlob]:
    """One blob per device from the dataset's fleet groups. `natural` (default): device i gets
    fleet user/home i (HAPT: users 11-25); `iid` / `dirichlet` split the fleet samples.
    Each blob holds the device's training windows (seeded shuffle; at most max_windows) and
    then its personal test split: the last `personal_fraction` of its windows in time order."""
    from fltiny.data import load_dataset
    from fltiny.data.partition import partition
    from fltiny.export.bundle import read_bundle

    manifest, _head, backbone = read_bundle(Path(bundle))
    if backbone is None:
        raise UsageError("the bundle has no backbone; data blobs feed the int8 backbone")
    ds = load_dataset(dataset or _dataset_of(manifest))
    fleet = ds.fleet()
    parts = partition(scheme, fleet.y, fleet.groups, n_devices,  # type: ignore[arg-type]
                      clients=ds.scenario.fleet, alpha=alpha, seed=seed)
    if len(parts) < n_devices:
        raise UsageError(f"the {ds.name} fleet has {len(parts)} devices' worth of data; "
                         f"asked for {n_devices}")
    mhash = hashlib.sha256(backbone).digest()[:8]
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
        labels = y.astype(np.int32) if ds.task == "classification" else None
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
