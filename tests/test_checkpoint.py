"""The device's checkpoint record (firmware/app/flt_checkpoint.h): tests/c/checkpoint_test.c
under ASan and UBSan checks its layout against a hand-written one, every status of the decoder
in the contract's order, that a refused record leaves the device's state untouched, and every
truncation (a torn write) and bit flip of a valid record."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fltiny.native import store as S


def test_checkpoint_record_c_unit_test_under_sanitizers():
    from fltiny.native.build import build_executable

    exe = build_executable([Path(__file__).parent / "c" / "checkpoint_test.c",
                            S.APP_DIR / "flt_checkpoint.c"], ["proto"],
                           name="checkpoint_test", sanitize=True, include_dirs=[S.APP_DIR])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                          env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout and not proc.stderr.strip(), proc.stdout + proc.stderr
