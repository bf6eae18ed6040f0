"""Decoder fuzzing: 100,000+ seeded random mutations of valid payloads through the Python decoder
and the C decoder (same inputs, same limits: the error codes must agree), and the C fuzz loop
(tests/c/delta_fuzz.c) under ASan + UBSan."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import delta as tw
from oracles import payload as pl
from oracles.delta import QuantMode
from oracles.payload import IndexFormat, PayloadError
from test_delta_native import c_decode

from fltiny.native.build import build_executable

HERE = Path(__file__).resolve().parent
VEC = json.loads((HERE / "vectors" / "delta" / "manifest.json").read_text())
INTERESTING = [0, 1, 2, 7, 8, 127, 128, 255, 256, 65535, 2**31 - 1, 2**31, 2**32 - 1]


def _bases(seed: int) -> list[tuple[bytes, int, int]]:
    """(payload, n, k): small pipeline outputs in every format, plus the vector payloads."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(60):
        n = int(rng.integers(1, 40 if i % 3 else 400))
        k = int(rng.integers(0, n + 1))
        mode = QuantMode(i % 2)
        block = int(rng.integers(1, 9)) if mode == QuantMode.BLOCK else 0
        local = rng.standard_normal(n).astype(np.float32)
        res = tw.compress(local, np.zeros(n, np.float32), None, k=k, mode=mode,
                          block_size=block)
        fmt = None if i % 5 == 4 else IndexFormat(i % 5)
        out.append((pl.encode(res.delta, fmt), n, k))
    out += [(bytes.fromhex(c["payload_hex"]), c["n"], c["k"]) for c in VEC["cases"]
            if len(c["payload_hex"]) < 800]
    return out


def _mutate(r: random.Random, buf: bytearray, n: int, k: int) -> bytearray:
    for _ in range(r.randint(1, 4)):
        op = r.randrange(9)
        if not buf and op < 4:
            op = 8
        if op == 0:
            buf[r.randrange(len(buf))] ^= 1 << r.randrange(8)
        elif op == 1:
            buf[r.randrange(len(buf))] = r.randrange(256)
        elif op == 2:
            buf[r.randrange(min(len(buf), 16))] = r.randrange(256)
        elif op == 3 and len(buf) >= 16:
            v = r.choice(INTERESTING) if r.randrange(3) else (r.choice((n, k)) + r.randrange(3) - 1)
            struct.pack_into("<I", buf, r.choice((8, 12)), v % 2**32)
        elif op == 4:
            del buf[r.randrange(len(buf) + 1):]
        elif op == 5 and buf:
            at = r.randrange(len(buf))
            del buf[at:at + r.randint(1, len(buf) - at)]
        elif op == 6 and buf:
            at = r.randrange(len(buf))
            buf[at:at] = buf[at:at + r.randint(1, 16)]
        else:
            buf.append(r.randrange(256))
    return buf


def test_fuzz_python_and_c_decoders_agree():
    r = random.Random(20260101)
    bases = _bases(7)
    statuses: Counter[str] = Counter()
    total = 0
    for b in range(100_000):
        payload, n, k = bases[b % len(bases)]
        data = bytes(_mutate(r, bytearray(payload), n, k))
        limits = dict(
            n_max=r.choice((n, n + 1, 2**32 - 1)),
            k_max=r.choice((k, k + 1, 4096)),
            scales_max=r.choice((k, 4096)),
        )
        try:
            d = pl.decode(data, **limits)
            py_status = "FLT_OK"
        except PayloadError as err:
            py_status, d = err.status, None
        c_status, c_delta = c_decode(data, **limits)
        assert py_status == c_status, (data.hex(), limits)
        if d is not None:
            assert c_delta.equals(d)
            assert pl.decode(pl.encode(d, IndexFormat(data[0] & 0x03))).equals(d)
        statuses[py_status] += 1
        total += 1
    assert total >= 100_000
    # the mutations reach every decoder outcome
    assert set(statuses) == {
        "FLT_OK", "FLT_ERR_TRUNCATED", "FLT_ERR_FORMAT", "FLT_ERR_UNSUPPORTED",
        "FLT_ERR_OVERSIZE", "FLT_ERR_RANGE", "FLT_ERR_NONFINITE",
    }, statuses


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 2**32 - 1), st.integers(0, 70))
def test_fuzz_python_decoder_arbitrary_bytes(data, n_max, k_max):
    # plausible headers most of the time, so the sections get exercised too
    if len(data) >= 4 and data[0] % 2:
        data = bytes([0x30 | data[1] % 8, data[2]]) + data[3:]  # version 3, mode, format
    try:
        pl.decode(data, n_max=n_max, k_max=k_max)
    except PayloadError:
        pass  # the only exception allowed; anything else fails the test


def test_c_fuzz_loop_under_sanitizers():
    exe = build_executable([HERE / "c" / "delta_fuzz.c"], ["delta"], name="delta_fuzz",
                           sanitize=True)
    for seed in (1, 2):
        proc = subprocess.run([str(exe), str(seed), "150000"], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith("iterations=150000 ok="), proc.stdout
        assert "runtime error" not in proc.stderr, proc.stderr
