"""On-target self-test: the generated backbone and one federated round run on QEMU (Cortex-M4F
and RV32IMC) and must produce exactly the host's bytes; a wrong expectation must fail."""

from __future__ import annotations

import re

import pytest

from fltiny.boards import get_board
from fltiny.build.selftest import run_selftest, selftest_header

pytestmark = [pytest.mark.slow, pytest.mark.cross,
              pytest.mark.tools("qemu-system-arm", "qemu-system-riscv32")]


@pytest.fixture(scope="module")
def header(har_tiny_bundle):
    return selftest_header(har_tiny_bundle)


@pytest.mark.parametrize("name", ["qemu-m4f", "qemu-rv32"])
def test_selftest_passes_on_target(name, har_tiny_bundle, header, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "fw" / f"selftest-{name}"
    code, output = run_selftest(get_board(name), har_tiny_bundle, out, header=header)
    assert code == 0 and "fltiny selftest: ok" in output


def test_selftest_can_fail(har_tiny_bundle, header, tmp_path_factory):
    """Flip one expected payload byte: the board must exit 22 (payload bytes differ)."""
    m = re.search(r"(flt_st_payload\[\d+\] = \{\n    )(\d+)", header)
    assert m
    bad = header[: m.start(2)] + str((int(m.group(2)) + 1) % 256) + header[m.end(2):]
    out = tmp_path_factory.getbasetemp() / "fw" / "selftest-bad"
    code, output = run_selftest(get_board("qemu-m4f"), har_tiny_bundle, out, header=bad)
    assert code == 22 and "FAILED" in output
