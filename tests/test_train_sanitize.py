"""The C unit test of the train component (tests/c/train_test.c) under ASan and UBSan: bad
inputs return their status codes, no crash, no sanitizer report, exact-sized buffers suffice."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fltiny.native.build import build_executable

C_TEST = Path(__file__).parent / "c" / "train_test.c"


def test_train_c_unit_test_under_sanitizers():
    exe = build_executable([C_TEST], ["train"], name="train_test", sanitize=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                          env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout and not proc.stderr.strip(), proc.stdout + proc.stderr
