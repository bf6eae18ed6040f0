"""Board descriptions, local PlatformIO platforms, the `fltiny boards` listing, data blobs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oracles.data_blob import decode as decode_blob

from fltiny.boards import LOCAL_PLATFORMS, PLATFORMS_DIR, load_boards
from fltiny.devices.data import HEADER_SIZE, DataBlob
from fltiny.errors import DataError

REAL = {"esp32", "esp32-s3", "esp32-c3", "nrf52840", "stm32f4", "rp2040"}
EMULATED = {"qemu-m3", "qemu-m4f", "qemu-m7", "qemu-rv32", "native"}


def test_every_board_is_described():
    boards = load_boards()
    assert set(boards) == REAL | EMULATED
    for b in boards.values():
        assert b.ram_bytes > 0 and b.flash_bytes > 0 and b.mcu and b.transports
        assert b.emulated == (b.name in EMULATED)
        if b.qemu:
            assert b.emulator["machine"] and b.emulator["data_address"] and b.memory
            # the data blob region lies outside the firmware's flash and RAM budget
            lo, hi = b.emulator["data_address"], b.emulator["data_address"] + b.emulator["data_max_bytes"]
            assert hi <= b.memory["flash_origin"] or lo >= b.memory["flash_origin"] + b.flash_bytes
            assert hi <= b.memory["ram_origin"] or lo >= b.memory["ram_origin"] + b.ram_bytes


def test_local_platforms_name_their_boards():
    boards = load_boards()
    for name in LOCAL_PLATFORMS:
        folder = PLATFORMS_DIR / name
        meta = json.loads((folder / "platform.json").read_text())
        assert meta["name"] == name and meta["packages"] == {}
        assert (folder / "platform.py").is_file() and (folder / "builder" / "main.py").is_file()
    for b in boards.values():
        if b.emulated:
            spec = json.loads((b.local_platform_dir / "boards" / f"{b.pio_board}.json").read_text())
            assert spec["build"]["mcu"]


def test_boards_command_lists_budgets(cli):
    code, out, _ = cli("boards")
    assert code == 0
    for name in REAL | EMULATED:
        assert f"\n{name} " in "\n" + out
    assert "qemu-m3" in out and "64 kB" in out and "256 kB" in out


def test_unknown_board_is_one_line(cli):
    code, _, err = cli("build", "--board", "nope")
    assert code == 2 and "unknown board 'nope'" in err and len(err.strip().splitlines()) == 1


def _blob(n=5, labels=True):
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(n, 7, 3), dtype=np.int8)
    return DataBlob(9, w, rng.integers(0, 6, n).astype(np.int32) if labels else None,
                    None if labels else rng.normal(size=(n, 2)).astype(np.float32), 0.5, -3, b"12345678")


@pytest.mark.parametrize("labels", [True, False])
def test_data_blob_round_trip(labels):
    b = _blob(labels=labels)
    raw = b.encode()
    assert raw[:4] == b"FLTD" and (len(raw) - HEADER_SIZE) % 4 == 0
    d = decode_blob(raw)
    assert d.device_id == 9 and np.array_equal(d.windows, b.windows)
    if labels:
        assert np.array_equal(d.labels, b.labels)
    else:
        assert np.array_equal(d.targets, b.targets)


def test_data_blob_rejects_corruption():
    raw = bytearray(_blob().encode())
    raw[HEADER_SIZE + 3] ^= 1
    with pytest.raises(DataError):
        decode_blob(bytes(raw))
    with pytest.raises(DataError):
        decode_blob(bytes(raw[:20]))
