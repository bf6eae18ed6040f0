"""Secure aggregation's protocol in the runtime (firmware/runtime/secagg): the C unit test
(tests/c/secagg_test.c under ASan + UBSan: GF(2^8), Shamir, the share box, the index set and
quantizer, every decoder status, whole rounds of C clients with dropouts unmasked in C, every
refusal of client.h)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_secagg_c_unit_test_under_sanitizers():
    from fltiny.native.build import build_executable

    exe = build_executable([Path(__file__).parent / "c" / "secagg_test.c"],
                           ["proto", "crypto", "secagg"], name="secagg_test", sanitize=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                          env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout and not proc.stderr.strip(), proc.stdout + proc.stderr
