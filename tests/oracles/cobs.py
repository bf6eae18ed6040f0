"""COBS, Consistent Overhead Byte Stuffing (Cheshire & Baker, IEEE/ACM ToN 7(2), 1999).

Oracle (tests only) of firmware/runtime/proto/cobs.c: same canonical encoding (a block closes at every zero
and after 254 non-zero bytes; the last block is always written, so 254 non-zero bytes encode as
FF <254 bytes> 01) and the same strict decoder.
"""

from __future__ import annotations


def max_encoded(n: int) -> int:
    """Worst case encoded size of n bytes (FLT_COBS_MAX_ENCODED)."""
    return n + n // 254 + 1


def encode(data: bytes) -> bytes:
    out = bytearray(b"\x00")
    code_pos = 0
    code = 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
            continue
        out.append(b)
        code += 1
        if code == 0xFF:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
    out[code_pos] = code
    return bytes(out)


class CobsDecodeError(ValueError):
    """A zero byte inside the data or a block running past the end."""


def decode(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0:
            raise CobsDecodeError("zero byte inside a COBS frame")
        run = code - 1
        if run > n - i:
            raise CobsDecodeError("COBS block runs past the end of the frame")
        block = data[i : i + run]
        if 0 in block:
            raise CobsDecodeError("zero byte inside a COBS frame")
        out += block
        i += run
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
