"""The instruction-count plugin and the benchmark firmware: the plugin builds (cached), counts
the same on every run, counts grow with the work, and stack painting gives a plausible
high-water mark."""

from __future__ import annotations

import pytest

from fltiny.bench.macs import backbone_macs, head_train_macs
from fltiny.bench.ontarget import (
    CALIBRATE,
    DELTA,
    FEATURES,
    INFER,
    ROUND,
    TRAIN,
    bench_blob,
    bench_firmware,
    marker_addresses,
    parse_plugin_output,
    run_bench,
)
from fltiny.bench.plugin import build_plugin
from fltiny.boards import get_board

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "qemu-system-riscv32", "gcc",
                                "arm-none-eabi-gcc", "riscv64-unknown-elf-gcc")]

_ELF: dict[str, object] = {}


def bench_elf(name, bundle, tmp_path_factory):
    if name not in _ELF:
        out = tmp_path_factory.getbasetemp() / "fw" / f"bench-{name}"
        _ELF[name] = bench_firmware(get_board(name), bundle, out).elf
    return _ELF[name]


def test_plugin_builds_once(tmp_path):
    lib = build_plugin(tmp_path)
    assert lib.is_file() and lib.suffix == ".so"
    mtime = lib.stat().st_mtime_ns
    assert build_plugin(tmp_path) == lib and lib.stat().st_mtime_ns == mtime  # cached


def test_parse_plugin_output():
    marks, total = parse_plugin_output("mark id=0 calls=1 sum=11 unmatched=0\n"
                                       "mark id=3 calls=2 sum=900 unmatched=1\ntotal insns=12345\n")
    assert marks == {0: (1, 11, 0), 3: (2, 900, 1)} and total == 12345


@pytest.mark.parametrize("name", ["qemu-m4f", "qemu-rv32"])
def test_counts_are_deterministic(name, har_tiny_bundle, tmp_path_factory):
    elf = bench_elf(name, har_tiny_bundle, tmp_path_factory)
    marks = marker_addresses(elf)
    assert len({a for pair in marks.values() for a in pair}) == 2 * len(marks)  # none folded
    blob = bench_blob(har_tiny_bundle, 16)
    a = run_bench(get_board(name), elf, blob)
    b = run_bench(get_board(name), elf, blob)
    assert a.intervals == b.intervals and a.total_insns == b.total_insns
    assert a.stack_hwm == b.stack_hwm
    assert set(a.intervals) == {CALIBRATE, INFER, FEATURES, TRAIN, DELTA, ROUND}
    assert 0 < a.overhead < 50  # the markers cost a handful of instructions
    assert all(a.net(i) > 0 for i in (INFER, FEATURES, TRAIN, DELTA, ROUND))


def test_counts_grow_with_work(har_tiny_bundle, tmp_path_factory):
    board = get_board("qemu-m4f")
    elf = bench_elf(board.name, har_tiny_bundle, tmp_path_factory)
    small = run_bench(board, elf, bench_blob(har_tiny_bundle, 8))
    big = run_bench(board, elf, bench_blob(har_tiny_bundle, 32))
    assert (small.n, big.n) == (8, 32)
    assert big.net(INFER) == small.net(INFER)  # one inference: the same work
    for mark in (FEATURES, TRAIN, ROUND):
        assert big.net(mark) > 3 * small.net(mark), mark
    # features: n inferences (each window's cost varies a little with its data: saturation
    # branches in the requantization) plus the dequantization
    assert 0.95 * 32 * big.net(INFER) < big.net(FEATURES) < 1.1 * 32 * big.net(INFER)
    # training runs the backbone at every use of a sample (the benchmark firmware keeps no
    # features, like a device without a feature cache): more than the features alone;
    # the round holds that training and the delta
    assert big.net(TRAIN) > big.net(FEATURES)
    assert big.net(ROUND) > big.net(TRAIN) + big.net(DELTA)


def test_stack_high_water_is_plausible(har_tiny_bundle, tmp_path_factory):
    board = get_board("qemu-m4f")
    run = run_bench(board, bench_elf(board.name, har_tiny_bundle, tmp_path_factory),
                    bench_blob(har_tiny_bundle, 8))
    assert 256 < run.stack_hwm < run.stack_reserve


def test_mac_counts_of_har_tiny(har_tiny_bundle):
    from fltiny.export.bundle import read_bundle

    _m, head, backbone = read_bundle(har_tiny_bundle)
    ops = {o.op: 0 for o in backbone_macs(backbone)}
    for o in backbone_macs(backbone):
        ops[o.op] += o.macs
    # the int8 backbone: Conv1D 3->8 k5 stride 2 over 128 steps (64 out); conv1 is in the tail
    assert ops["CONV_2D"] == 64 * 8 * 5 * 3
    # the float tail: conv1 8->16 k5 stride 2 (32 out, 'same': 1 zero left, 2 right, so
    # 32*5 - 3 taps read the input) 20,096, pooling 0, dense 16-16 256 and 16-6 96: forward
    # 20,448; backward = weight gradients 20,448 + the input gradients of the layers after
    # the first (0 + 256 + 96)
    fwd = (32 * 5 - 3) * 16 * 8 + 16 * 16 + 16 * 6
    assert head_train_macs(head.layers) == {"forward": fwd, "backward": fwd + 352,
                                            "total": 2 * fwd + 352}
