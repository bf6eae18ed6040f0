"""The window store takes the RAM the rest of the firmware leaves (fltiny.build.firmware):
har-small's float tail (6,406 trained parameters, 263 kB of RAM without a store) overflows a
qemu-rv32 cut to 320 kB with a store of a quarter of the RAM (qemu-rv32's own 400 kB holds both
since the round buffers share the link message's storage); the build shrinks the store, links
again and fits. A real PlatformIO build of the real export; the numbers come from the linked
ELF."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fltiny.boards import get_board
from fltiny.build.firmware import MIN_STORE_WINDOWS, build_firmware
from fltiny.build.project import store_layout
from fltiny.export.bundle import read_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def har_small_bundle(tmp_path_factory) -> Path:
    from fltiny.train import TrainConfig
    from fltiny.workflow import export_bundle

    out = tmp_path_factory.mktemp("har-small")
    export_bundle(out=out, model_name="har-small", dataset="hapt",
                  train_config=TrainConfig(epochs=1), train_convs=1)
    return out


def test_store_shrinks_until_the_firmware_fits(har_small_bundle, tmp_path):
    board = dataclasses.replace(get_board("qemu-rv32"), ram_bytes=320 * 1024)
    manifest, head, _ = read_bundle(har_small_bundle)
    assert head.n_params > 6000  # the float tail, not the dense head only
    first = store_layout(board, manifest, board.max_windows)
    said: list[str] = []
    fw = build_firmware(board, har_small_bundle, tmp_path / "fw", progress=said.append)
    store = fw.project.store
    assert fw.report is not None and fw.report.ram_used <= fw.report.ram_budget
    assert MIN_STORE_WINDOWS <= store.capacity < first.capacity
    assert any(f"window store: {store.capacity} windows (of {first.capacity})" in s for s in said)
    # the store is as big as fits: a larger one would not have (the ELF's RAM grows with it)
    assert fw.report.ram_used + store.record_bytes > fw.report.ram_budget - store.record_bytes


def test_no_shrink_when_the_store_is_not_the_problem(har_tiny_bundle, tmp_path):
    board = get_board("qemu-m4f")
    manifest, _, _ = read_bundle(har_tiny_bundle)
    said: list[str] = []
    fw = build_firmware(board, har_tiny_bundle, tmp_path / "fw", progress=said.append)
    assert fw.project.store.capacity == store_layout(board, manifest, board.max_windows).capacity
    assert not any("to fit" in s for s in said)


def test_secagg_run_refused_where_the_model_leaves_it_out(har_small_bundle, cli, tmp_path):
    """har-small's tail would need 78 kB for secure aggregation, more than an eighth of
    qemu-rv32's 400 kB: a --secagg run says so before building anything."""
    code, out, err = cli("run", "--fleet", "qemu-rv32=3", "--rounds", "1", "--secagg",
                         "--strategy", "fedavg", "--bundle", str(har_small_bundle),
                         "--out", str(tmp_path / "r"))
    text = out + err
    assert code != 0 and "secure aggregation needs 78 kB" in text and "qemu-rv32" in text
    assert "Traceback" not in text and not (tmp_path / "r" / "run.sqlite").exists()
