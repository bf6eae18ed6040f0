"""The device's own data in C (firmware/app, through fltiny/native/store.py): the personal split
rule (flt_data_n_test), the window store (cutting, labels, the most recent windows kept, the
oldest dropped and counted, the round's contiguous view), the recording format (the Python
writer, the C reader) and the quantization of raw readings. Oracles: tests/oracles."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from oracles.window_store import cut_windows

from fltiny.devices.data import (
    HEADER_SIZE,
    DataBlob,
    Recording,
    personal_n_test,
    personal_split,
    quantize_windows,
)
from fltiny.errors import RuntimeStatusError
from fltiny.native import abi
from fltiny.native import store as S


def test_window_store_c_unit_test_under_sanitizers():
    """tests/c/window_store_test.c under ASan and UBSan: the store against a C reference with
    exact-sized heap buffers, and every truncation and header bit flip of a recording."""
    from fltiny.native.build import build_executable

    exe = build_executable([Path(__file__).parent / "c" / "window_store_test.c",
                            *(S.APP_DIR / f for f in S.SOURCES)], ["proto"],
                           name="window_store_test", sanitize=True, include_dirs=[S.APP_DIR])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                          env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout and not proc.stderr.strip(), proc.stdout + proc.stderr


# ---- the personal split rule -------------------------------------------------------------


def _python_rule(n: int, fraction: float) -> int:
    """The rule as fltiny/devices/data.py first wrote it in Python (before the C owned it)."""
    if n < 2:
        return 0
    return min(max(int(round(n * fraction)), 1 if fraction > 0 else 0), n - 1)


@pytest.mark.parametrize("fraction", [0.3, 0.0, 0.25, 0.5, 1.0, 0.1])
def test_personal_split_is_the_c_rule_and_the_python_one(fraction):
    ppm = round(fraction * 1_000_000)
    got = [S.n_test(n, ppm) for n in range(0, 3001)]
    assert got == [_python_rule(n, fraction) for n in range(0, 3001)]
    # half to even, as Python's round(): 15 * 0.3 = 4.5 -> 4, 25 * 0.3 = 7.5 -> 8
    if fraction == 0.3:
        assert (got[15], got[25], got[5]) == (4, 8, 2)


def test_personal_split_extremes_and_the_blob_writer_use_it():
    assert S.n_test(2**32 - 1, 300000) == round((2**32 - 1) * 0.3)
    assert S.n_test(10, 2_000_000) == 9  # ppm capped: at most n - 1
    train, test = personal_split(np.arange(37)[::-1])  # sorted into time order first
    assert len(test) == personal_n_test(37) == S.n_test(37, 300000) == 11
    assert list(test) == list(range(26, 37)) and list(train) == list(range(26))


# ---- the window store --------------------------------------------------------------------


def _stream(rng, n, channels, n_classes=6, run=(40, 200), unlabelled=0.0):
    """Samples with labels that hold for a while, then change; a share of unlabelled steps."""
    samples = rng.integers(-128, 128, size=(n, channels)).astype(np.int8)
    labels = np.empty(n, np.int32)
    i = 0
    while i < n:
        k = int(rng.integers(*run))
        labels[i : i + k] = rng.integers(0, n_classes)
        i += k
    labels[rng.random(n) < unlabelled] = -1
    return samples, labels


def _check(ws: S.WindowStore, want, capacity):
    v = ws.view()
    keep = want.windows[-capacity:]
    assert v.windows.shape == keep.shape and np.array_equal(v.windows, keep)
    assert np.array_equal(v.labels, want.labels[-capacity:])
    assert v.n_test == S.n_test(len(keep), 300000)
    st = ws.stats
    assert st.windows == want.cut and st.rejected == want.rejected
    assert st.stored == len(want.windows) and st.count == len(keep) <= st.capacity == capacity
    assert st.dropped == st.stored - st.count


@pytest.mark.parametrize("window_len,stride,capacity", [(8, 8, 5), (8, 4, 7), (5, 1, 3), (16, 16, 1)])
def test_store_keeps_the_most_recent_windows_and_counts_drops(window_len, stride, capacity):
    rng = np.random.default_rng(window_len * 100 + stride)
    samples, labels = _stream(rng, 900, 3, run=(5, 60), unlabelled=0.01)
    ws = S.WindowStore(window_len=window_len, channels=3, stride=stride, capacity=capacity,
                       n_classes=6)
    # views in the middle reorder the ring; pushing on afterwards must not lose the order
    for lo, hi in [(0, 17), (17, 300), (300, 301), (301, 900)]:
        ws.push_samples(samples[lo:hi], labels[lo:hi])
        want = cut_windows(samples[:hi], labels[:hi], window_len, stride, n_classes=6)
        if len(want.windows):
            _check(ws, want, capacity)
    st = ws.stats
    assert st.dropped > 0 and st.rejected > 0 and st.samples == 900  # the test covers both


def test_a_window_is_labelled_only_when_all_its_steps_agree():
    ws = S.WindowStore(window_len=4, channels=1, capacity=10, n_classes=3)
    seq = [1, 1, 1, 1,  # kept: label 1
           1, 2, 2, 2,  # a change of label inside: rejected
           2, 2, 2, 2,  # kept: 2
           -1, 0, 0, 0,  # an unlabelled step: rejected
           5, 5, 5, 5]  # label 5 >= n_classes: rejected
    ws.push_samples(np.arange(len(seq)).reshape(-1, 1), np.asarray(seq))
    st = ws.stats
    assert (st.windows, st.stored, st.rejected, st.count) == (5, 2, 3, 2)
    v = ws.view()
    assert v.labels.tolist() == [1, 2] and v.windows[:, :, 0].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]
    assert v.n_test == 1


def test_regression_windows_take_their_last_steps_targets():
    ws = S.WindowStore(window_len=2, channels=2, capacity=3, n_targets=2)
    rows = [([1, 2], 0, [0.5, 1.0]), ([3, 4], 0, [1.5, 2.0]),  # kept: targets of step 2
            ([5, 6], 0, [9.0, 9.0]), ([7, 8], -1, [2.5, 3.0]),  # last step unlabelled: rejected
            ([9, 10], 0, [0.0, 0.0]), ([11, 12], 0, [np.nan, 1.0]),  # non-finite: rejected
            ([13, 14], 0, [0.0, 0.0]), ([15, 16], 0, [4.0, -4.0])]  # kept
    for v, lab, t in rows:
        ws.push(np.asarray(v), lab, np.asarray(t, np.float32))
    st = ws.stats
    assert (st.windows, st.stored, st.rejected) == (4, 2, 2)
    view = ws.view()
    assert view.labels is None and view.targets.tolist() == [[1.5, 2.0], [4.0, -4.0]]
    assert view.windows.reshape(2, -1).tolist() == [[1, 2, 3, 4], [13, 14, 15, 16]]


def test_an_empty_store_has_no_view():
    ws = S.WindowStore(window_len=4, channels=2, capacity=2)
    ws.push(np.zeros(2), 0)
    with pytest.raises(RuntimeStatusError, match="FLT_ERR_STATE"):
        ws.view()


BAD_CONFIGS = {
    "stride-zero": (dict(window_len=4, channels=1, capacity=2, stride=0), "FLT_ERR_RANGE"),
    "stride-beyond-window": (dict(window_len=4, channels=1, capacity=2, stride=5), "FLT_ERR_RANGE"),
    "capacity-zero": (dict(window_len=4, channels=1, capacity=0), "FLT_ERR_RANGE"),
    "no-channels": (dict(window_len=4, channels=0, capacity=2), "FLT_ERR_RANGE"),
    "too-many-targets": (dict(window_len=4, channels=1, capacity=2, n_targets=5), "FLT_ERR_RANGE"),
    "zero-targets": (dict(window_len=4, channels=1, capacity=2, n_targets=0), "FLT_ERR_RANGE"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_geometry_is_refused(name):
    kw, status = BAD_CONFIGS[name]
    with pytest.raises(RuntimeStatusError, match=status):
        S.WindowStore(**kw)


def test_buffers_smaller_than_the_geometry_are_refused():
    from fltiny.native.status import Status

    lib = S.lib()
    cfg = S.StoreCfg(4, 2, 4, 3, S.LABELS, 1, 0)
    st = S.Store()
    win, lab, asm = np.zeros(24, np.int8), np.zeros(3, np.int32), np.zeros(8, np.int8)
    p = [a.ctypes.data for a in (win, lab, asm)]
    args = dict(windows=(p[0], 24), labels=(p[1], 3), assembly=(p[2], 8))
    assert lib.flt_window_store_init(st, cfg, p[0], 24, p[1], 3, None, 0, p[2], 8) == 0
    for short in args:
        a = {k: (ptr, n - 1 if k == short else n) for k, (ptr, n) in args.items()}
        s = lib.flt_window_store_init(st, cfg, *a["windows"], *a["labels"], None, 0, *a["assembly"])
        assert s == Status.ERR_NOMEM, short
    assert lib.flt_window_store_init(st, cfg, p[0], 24, None, 0, None, 0, p[2], 8) == Status.ERR_ARG


def test_store_mirrors_match_the_c():
    table = abi.check(S.lib(), S.MIRRORS, "fltiny/native/store.py")
    assert table["FLT_DATA_PERSONAL_PPM"] == 300000
    assert table["FLT_RECORDING_HEADER_SIZE"] == HEADER_SIZE


# ---- recordings --------------------------------------------------------------------------


def _blob(n=12, steps=4, channels=3, regression=False, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(n, steps, channels)).astype(np.int8)
    labels = None if regression else rng.integers(0, 6, n).astype(np.int32)
    targets = rng.normal(size=(n, 2)).astype(np.float32) if regression else None
    return DataBlob(7, w, labels, targets, 0.05, -3, b"12345678")


@pytest.mark.parametrize("regression", [False, True])
def test_recording_round_trip_through_the_c_reader(regression):
    blob = _blob(regression=regression)
    rec = Recording.from_windows(blob, samples_per_second=640)
    raw = rec.encode()
    hdr, _buf = S.parse_recording(raw)
    assert (hdr.device_id, hdr.count, hdr.channels, hdr.samples_per_second) == (7, 48, 3, 640)
    assert (hdr.target_kind, hdr.n_targets) == ((1, 2) if regression else (0, 1))
    assert bytes(hdr.model_hash) == b"12345678" and np.float32(hdr.input_scale) == np.float32(0.05)
    assert int.from_bytes(raw[8:12], "little") == 7  # where the launcher reads a device id
    values, labels, targets = S.recording_samples(raw)
    assert np.array_equal(values, blob.windows.reshape(-1, 3))
    if regression:
        assert np.array_equal(targets[:, :2], np.repeat(blob.targets, 4, axis=0))
    else:
        assert np.array_equal(labels, np.repeat(blob.labels, 4))


def test_disjoint_windows_of_a_recording_are_the_blobs_windows():
    """What a board with stride = window length collects from Recording.from_windows(blob):
    exactly the blob's windows, in order (so a host can replay such a device's rounds)."""
    blob = _blob(n=30)
    values, labels, _ = S.recording_samples(Recording.from_windows(blob).encode())
    ws = S.WindowStore(window_len=4, channels=3, capacity=30, n_classes=6)
    ws.push_samples(values, labels)
    v = ws.view()
    assert np.array_equal(v.windows, blob.windows) and np.array_equal(v.labels, blob.labels)
    assert v.n_test == personal_n_test(30)


def _patched(raw: bytes, offset: int, fmt: str, value, fix_crc: bool = True) -> bytes:
    b = bytearray(raw)
    struct.pack_into(fmt, b, offset, value)
    if fix_crc:
        struct.pack_into("<I", b, 40, zlib.crc32(bytes(b[HEADER_SIZE:])))
    return bytes(b)


def _bad_recordings() -> dict[str, tuple[bytes, str]]:
    raw = Recording.from_windows(_blob()).encode()
    return {
        "short-header": (raw[:47], "FLT_ERR_TRUNCATED"),
        "bad-magic": (b"FLTD" + raw[4:], "FLT_ERR_FORMAT"),
        "version-2": (_patched(raw, 4, "<H", 2), "FLT_ERR_UNSUPPORTED"),
        "header-size": (_patched(raw, 6, "<H", 40), "FLT_ERR_FORMAT"),
        "reserved-16": (_patched(raw, 16, "<H", 1), "FLT_ERR_FORMAT"),
        "reserved-22": (_patched(raw, 22, "<H", 1), "FLT_ERR_FORMAT"),
        "unknown-kind": (_patched(raw, 20, "<B", 2), "FLT_ERR_UNSUPPORTED"),
        "labels-with-two-targets": (_patched(raw, 21, "<B", 2), "FLT_ERR_FORMAT"),
        "zero-targets": (_patched(raw, 21, "<B", 0), "FLT_ERR_FORMAT"),
        "zero-samples": (_patched(raw, 12, "<I", 0), "FLT_ERR_TRUNCATED"),
        "zero-channels": (_patched(raw, 18, "<H", 0), "FLT_ERR_TRUNCATED"),
        "count-beyond-body": (_patched(raw, 12, "<I", 49), "FLT_ERR_TRUNCATED"),
        "huge-count": (_patched(raw, 12, "<I", 0xFFFFFFFF), "FLT_ERR_TRUNCATED"),
        "body-cut": (raw[:-4], "FLT_ERR_TRUNCATED"),
        "crc": (_patched(raw, 48, "<b", -1, fix_crc=False), "FLT_ERR_CHECKSUM"),
    }


@pytest.mark.parametrize("name", sorted(_bad_recordings()))
def test_bad_recordings_are_refused_with_their_reason(name):
    raw, status = _bad_recordings()[name]
    with pytest.raises(RuntimeStatusError, match=status):
        S.parse_recording(raw)


def test_a_blob_is_not_a_recording():
    with pytest.raises(RuntimeStatusError, match="FLT_ERR_FORMAT"):
        S.parse_recording(_blob().encode())


# ---- raw readings -> the model's int8 input ------------------------------------------------


def test_quantize_sample_is_the_hosts_quantization():
    """flt_sample_quantize (what a sensor port calls on readings in physical units) gives the
    bytes the host writes into a blob for the same readings (quantize_windows), with har-tiny's
    normalisation and input quantization."""
    from types import SimpleNamespace

    manifest = SimpleNamespace(
        normalization={"mean": [0.8200561629809862, -8.54186828505212e-06, 0.07617640497517796],
                       "std": [0.42119952931267396, 0.4094908977010113, 0.30770797459314997]},
        backbone={"input": {"scale": 0.035206545144319534, "zero_point": 17}})
    rng = np.random.default_rng(3)
    raw = np.concatenate([rng.normal(0.5, 1.0, size=(4000, 3)),  # readings in g
                          rng.normal(0.0, 40.0, size=(200, 3)),  # beyond the int8 range
                          np.float32([[0.8200561629809862, 0.0, 0.0]])]).astype(np.float32)
    norm = manifest.normalization
    inp = manifest.backbone["input"]
    got = S.quantize_sample(raw, np.float32(norm["mean"]), np.float32(norm["std"]), inp["scale"],
                            inp["zero_point"])
    want = quantize_windows(raw.reshape(-1, 1, 3), manifest).reshape(-1, 3)
    assert np.array_equal(got, want)
    assert (got == 127).any() and (got == -128).any() and got[-1, 0] == 17


# ---- the store's size, by board, at generation time ----------------------------------------


@pytest.mark.parametrize("shape,task,outputs", [([128, 3], "classification", 6), ([8], "regression", 1)])
def test_every_board_gets_a_store_within_its_budget(shape, task, outputs):
    from types import SimpleNamespace

    from fltiny.boards import load_boards
    from fltiny.build.project import STORE_RAM_SHARE, store_layout, useful_store_windows

    manifest = SimpleNamespace(input_shape=shape, task=task, n_outputs=outputs)
    for board in load_boards().values():
        lay = store_layout(board, manifest, board.max_windows)
        useful = useful_store_windows(board.max_windows)
        assert useful - personal_n_test(useful) == board.max_windows  # a round can use them all
        assert lay.capacity <= useful and lay.ram_bytes <= board.ram_bytes // STORE_RAM_SHARE
        if board.store_windows is None and lay.capacity < useful:  # the RAM share binds
            bigger = dataclasses.replace(lay, capacity=lay.capacity + 1)
            assert bigger.ram_bytes > board.ram_bytes // STORE_RAM_SHARE
        assert store_layout(board, manifest, board.max_windows, enabled=False).capacity == 0
        if board.name == "qemu-m3":
            assert lay.capacity == 0 and lay.ram_bytes == 0  # its 64 kB hold the training buffers
        else:
            assert lay.capacity > 0
    if task == "regression":
        assert (lay.window_len, lay.channels, lay.target_kind, lay.record_bytes) == (1, 8, 1, 12)
