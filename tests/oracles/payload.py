"""Numpy oracle (tests only) of the delta payload codec, version 3 (firmware/runtime/delta/payload.c).

Byte layout and error cases: docs/protocol.md, "Delta payload (version 3)". Entry formats:
LEB128 varints of index gaps, a bitmap of n bits, or Golomb-Rice codes of gap - 1
(Golomb, "Run-length encodings", IEEE Trans. IT 1966; Rice, JPL 1979), each followed by the
int8 values; or Rice codes of gap - 1 interleaved with Rice codes of |q| - min|q| and sign
bits. The encoder picks the smallest, ties to the lower format id, so C and Python produce
identical bytes.

The decoder checks in the same order as the C decoder and raises ``PayloadError`` whose
``status`` is the name of the ``flt_status_t`` code the C decoder returns for the same input.
"""

from __future__ import annotations

import enum

import numpy as np

from oracles.delta import MAX_BLOCK, QuantMode, SparseDelta, num_scales

VERSION = 3
# version << 4 | mode << 2 | format, then the Rice parameter (bits 0-4) and, in format
# RICE_VALUES, the value Rice parameter (bits 5-7); then varints n, k [, B]
FIXED_SIZE = 2
MAX_RICE = 31
MAX_VALUE_RICE = 7


class IndexFormat(enum.IntEnum):
    VARINT = 0
    BITMAP = 1
    RICE = 2
    RICE_VALUES = 3


class PayloadError(ValueError):
    """A payload that does not decode; ``status`` names the matching C flt_status_t code."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{message} ({status}); the payload is corrupt or from another version")
        self.status = status


def _fail(status: str, message: str) -> PayloadError:
    return PayloadError(status, message)


# ---- sizes -------------------------------------------------------------------------------


def _gaps(indices: np.ndarray) -> np.ndarray:
    """idx[j] - idx[j-1] with idx[-1] = -1 (all >= 1 for strictly increasing indices)."""
    idx = indices.astype(np.int64)
    return np.diff(idx, prepend=-1)


def _varint_len(v: np.ndarray) -> np.ndarray:
    return 1 + sum((v >= (1 << s)).astype(np.int64) for s in (7, 14, 21, 28))


def _rice_bits(u: np.ndarray, r: int) -> int:
    return int(np.sum((u >> r) + 1 + r))


def rice_parameter(indices: np.ndarray) -> int:
    """r0 = largest r <= 31 with k * 2^r <= S (S = sum of gap-1 = last + 1 - k), 0 if S < k;
    r0 - 1 instead when it costs no more bits."""
    k = int(indices.size)
    if k == 0:
        return 0
    s = int(indices[-1]) + 1 - k
    r = 0
    while r < MAX_RICE and (k << (r + 1)) <= s:
        r += 1
    u = _gaps(indices) - 1
    if r > 0 and _rice_bits(u, r - 1) <= _rice_bits(u, r):
        r -= 1
    return r


def value_code(values: np.ndarray) -> tuple[int, int, int]:
    """(qmin, r, bits) of the Rice-coded values: qmin = min |q|, r in 0..7 with the fewest
    bits (ties to the smaller r); per value a Rice code of |q| - qmin and a sign bit if q != 0."""
    a = np.abs(values.astype(np.int64))
    qmin = int(a.min()) if a.size else 0
    signs = int(np.count_nonzero(a))
    costs = [_rice_bits(a - qmin, r) + signs for r in range(MAX_VALUE_RICE + 1)]
    r = int(np.argmin(costs))  # argmin: the first (smallest r) of equal costs
    return qmin, r, costs[r]


def section_sizes(delta: SparseDelta) -> dict[IndexFormat, int]:
    """Bytes after the scales (index section and values) of each format for this delta."""
    gaps = _gaps(delta.indices)
    r = rice_parameter(delta.indices)
    gap_bits = _rice_bits(gaps - 1, r)
    return {
        IndexFormat.VARINT: int(np.sum(_varint_len(gaps))) + delta.k,
        IndexFormat.BITMAP: (delta.n + 7) // 8 + delta.k,
        IndexFormat.RICE: (gap_bits + 7) // 8 + delta.k,
        IndexFormat.RICE_VALUES: 1 + (gap_bits + value_code(delta.values)[2] + 7) // 8,
    }


def choose_format(delta: SparseDelta) -> IndexFormat:
    sizes = section_sizes(delta)
    return min(IndexFormat, key=lambda f: (sizes[f], int(f)))


def max_size(n: int, k: int, mode: QuantMode, block_size: int) -> int:
    """Upper bound of the automatic encoding: 16 + 4 * num_scales + ceil(n / 8) + k."""
    return header_size(n, k, mode, block_size) + 4 * num_scales(k, mode, block_size) \
        + (n + 7) // 8 + k


def header_size(n: int, k: int, mode: QuantMode, block_size: int) -> int:
    return FIXED_SIZE + len(_varint(n)) + len(_varint(k)) + (
        len(_varint(block_size)) if mode == QuantMode.BLOCK else 0)


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """(value, next position) of a canonical LEB128 uint32 at buf[pos:]."""
    v, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise _fail("FLT_ERR_TRUNCATED", f"{what} ends early")
        byte = buf[pos]
        pos += 1
        if shift >= 28 and byte & 0xF0:
            raise _fail("FLT_ERR_FORMAT", f"{what}: varint longer than 32 bits")
        v |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    if shift and byte == 0:
        raise _fail("FLT_ERR_FORMAT", f"{what}: overlong varint")
    return v, pos


# ---- encoder -----------------------------------------------------------------------------


def _check_delta(d: SparseDelta) -> None:
    if d.mode == QuantMode.BLOCK and not 1 <= d.block_size <= MAX_BLOCK:
        raise ValueError(f"block_size must be within [1, {MAX_BLOCK}], got {d.block_size}")
    if d.mode == QuantMode.TENSOR and d.block_size != 0:
        raise ValueError("block_size must be 0 in tensor mode")
    if not 1 <= d.n <= 0xFFFFFFFF or d.k > d.n:
        raise ValueError(f"need 1 <= n < 2^32 and k <= n, got n={d.n} k={d.k}")
    idx = d.indices.astype(np.int64)
    if d.k and (idx[0] < 0 or idx[-1] >= d.n or np.any(np.diff(idx) <= 0)):
        raise ValueError("indices must be strictly increasing and < n")
    if d.values.size != d.k or np.any(d.values.astype(np.int16) < -127):
        raise ValueError("need k values within [-127, 127]")
    if d.scales.size != num_scales(d.k, d.mode, d.block_size):
        raise ValueError("wrong number of scales")
    bits = d.scales.astype(np.float32).view(np.uint32)
    if np.any((bits & 0x7FFFFFFF) >= 0x7F800000) or np.any(bits & 0x80000000):
        raise ValueError("scales must be finite and >= +0")
    if np.any((d.scale_per_value() == 0) & (d.values != 0)):
        raise ValueError("a zero scale must have zero values")


def encode(delta: SparseDelta, index_format: IndexFormat | None = None) -> bytes:
    """Encode a delta; ``index_format`` None picks the smallest section."""
    _check_delta(delta)
    fmt = choose_format(delta) if index_format is None else IndexFormat(index_format)
    gaps = _gaps(delta.indices)
    rice = rice_parameter(delta.indices) if fmt >= IndexFormat.RICE else 0
    vr = value_code(delta.values)[1] if fmt == IndexFormat.RICE_VALUES else 0
    out = bytearray([VERSION << 4 | int(delta.mode) << 2 | int(fmt), rice | vr << 5])
    out += _varint(delta.n) + _varint(delta.k)
    if delta.mode == QuantMode.BLOCK:
        out += _varint(delta.block_size)
    out += delta.scales.astype("<f4").tobytes()
    if fmt == IndexFormat.VARINT:
        for g in gaps.tolist():
            out += _varint(g)
    elif fmt == IndexFormat.BITMAP:
        bitmap = np.zeros(((delta.n + 7) // 8) * 8, dtype=np.uint8)
        bitmap[delta.indices] = 1
        out += np.packbits(bitmap, bitorder="little").tobytes()
    elif fmt == IndexFormat.RICE:
        bits: list[int] = []
        for u in (gaps - 1).tolist():
            bits += _rice(u, rice)
        out += np.packbits(np.array(bits, dtype=np.uint8), bitorder="big").tobytes()
    else:
        qmin, vr, _ = value_code(delta.values)
        out += bytes([qmin])
        bits = []
        for u, q in zip((gaps - 1).tolist(), delta.values.astype(np.int64).tolist(), strict=True):
            bits += _rice(u, rice) + _rice(abs(q) - qmin, vr) + ([int(q < 0)] if q else [])
        out += np.packbits(np.array(bits, dtype=np.uint8), bitorder="big").tobytes()
        return bytes(out)
    out += delta.values.astype(np.int8).tobytes()
    return bytes(out)


def _rice(u: int, r: int) -> list[int]:
    return [1] * (u >> r) + [0] + [(u >> b) & 1 for b in range(r - 1, -1, -1)]


# ---- decoder -----------------------------------------------------------------------------


class _Bits:
    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos, self.bit = buf, pos, 0

    def read(self) -> int:
        if self.pos >= len(self.buf):
            raise _fail("FLT_ERR_TRUNCATED", "Rice section ends early")
        b = (self.buf[self.pos] >> (7 - self.bit)) & 1
        self.bit += 1
        if self.bit == 8:
            self.bit, self.pos = 0, self.pos + 1
        return b


def _push(indices: list[int], prev: int, gap: int, n: int) -> int:
    idx = prev + gap
    if idx >= n:
        raise _fail("FLT_ERR_RANGE", f"index {idx} out of range for n={n}")
    indices.append(idx)
    return idx


def _decode_varint(buf: bytes, pos: int, n: int, k: int, out: list[int]) -> int:
    prev = -1
    for _ in range(k):
        v, pos = _read_varint(buf, pos, "varint section")
        if v == 0:
            raise _fail("FLT_ERR_FORMAT", "indices not strictly increasing (zero gap)")
        prev = _push(out, prev, v, n)
    return pos


def _decode_bitmap(buf: bytes, pos: int, n: int, k: int, out: list[int]) -> int:
    nbytes = (n + 7) // 8
    if len(buf) - pos < nbytes:
        raise _fail("FLT_ERR_TRUNCATED", "bitmap section ends early")
    bits = np.unpackbits(np.frombuffer(buf, np.uint8, nbytes, pos), bitorder="little")
    set_idx = np.flatnonzero(bits)
    # The C decoder scans in order and stops at the first padding bit or the (k+1)-th bit.
    for count, i in enumerate(set_idx.tolist()):
        if i >= n:
            raise _fail("FLT_ERR_FORMAT", "bitmap padding bit set")
        if count >= k:
            raise _fail("FLT_ERR_FORMAT", "bitmap has more than k bits set")
    if set_idx.size != k:
        raise _fail("FLT_ERR_FORMAT", f"bitmap has {set_idx.size} bits set, header says k={k}")
    out += set_idx.tolist()
    return pos + nbytes


def _read_rice(reader: _Bits, r: int, umax: int) -> int:
    q = 0
    while reader.read():
        q += 1
        if q > umax >> r:
            raise _fail("FLT_ERR_RANGE", "Rice quotient out of range")
    u = q << r
    for b in range(r - 1, -1, -1):
        u |= reader.read() << b
    if u > umax:
        raise _fail("FLT_ERR_RANGE", f"Rice value {u} above {umax}")
    return u


def _decode_rice(buf: bytes, pos: int, n: int, k: int, rice: int, out: list[int],
                 values: list[int] | None = None, vr: int = 0) -> int:
    """Format RICE, or RICE_VALUES when ``values`` is a list to fill (``vr`` from the
    header)."""
    qmin = 0
    if values is not None:
        if len(buf) - pos < 1:
            raise _fail("FLT_ERR_TRUNCATED", "value code parameter qmin missing")
        qmin = buf[pos]
        if qmin > 127:
            raise _fail("FLT_ERR_FORMAT", f"bad value code parameter qmin={qmin}")
        pos += 1
    reader = _Bits(buf, pos)
    prev = -1
    for _ in range(k):
        prev = _push(out, prev, _read_rice(reader, rice, n - 1) + 1, n)
        if values is not None:
            a = qmin + _read_rice(reader, vr, 127 - qmin)
            values.append(-a if a and reader.read() else a)
    if reader.bit:
        if buf[reader.pos] & (0xFF >> reader.bit):
            raise _fail("FLT_ERR_FORMAT", "Rice padding bits set")
        reader.pos += 1
    return reader.pos


def decode(
    buf: bytes,
    *,
    n_max: int = 0xFFFFFFFF,
    k_max: int = 0xFFFFFFFF,
    scales_max: int = 0xFFFFFFFF,
) -> SparseDelta:
    """Decode and validate a payload; raises PayloadError (see the module docstring)."""
    buf = bytes(buf)
    if len(buf) < FIXED_SIZE:
        raise _fail("FLT_ERR_TRUNCATED", f"{len(buf)} bytes, shorter than the header")
    first, params = buf[0], buf[1]
    if first >> 4 != VERSION:  # a version-2 payload starts with "FD": nibble 4
        raise _fail("FLT_ERR_UNSUPPORTED", f"unsupported version {first >> 4}")
    fmt, mode = first & 0x03, (first >> 2) & 0x03
    if mode > QuantMode.BLOCK:
        raise _fail("FLT_ERR_UNSUPPORTED", f"unknown quantization mode {mode}")
    rice, vr = params & 0x1F, params >> 5
    if fmt != IndexFormat.RICE_VALUES and (vr if fmt == IndexFormat.RICE else params):
        raise _fail("FLT_ERR_FORMAT", f"bad Rice parameter byte {params:#04x}")
    n, pos = _read_varint(buf, FIXED_SIZE, "header")
    k, pos = _read_varint(buf, pos, "header")
    block = 0
    if mode == QuantMode.BLOCK:
        block, pos = _read_varint(buf, pos, "header")
        if not 1 <= block <= MAX_BLOCK:
            raise _fail("FLT_ERR_FORMAT", f"bad block size {block}")
    if n == 0:
        raise _fail("FLT_ERR_FORMAT", "n is 0")
    if n > n_max:
        raise _fail("FLT_ERR_OVERSIZE", f"n={n} exceeds the limit {n_max}")
    if k > n:
        raise _fail("FLT_ERR_FORMAT", f"k={k} exceeds n={n}")
    if k > k_max:
        raise _fail("FLT_ERR_OVERSIZE", f"k={k} exceeds the limit {k_max}")
    qmode = QuantMode(mode)
    ns = num_scales(k, qmode, block)
    if ns > scales_max:
        raise _fail("FLT_ERR_OVERSIZE", f"{ns} scales exceed the limit {scales_max}")
    if ns > (len(buf) - pos) // 4:
        raise _fail("FLT_ERR_TRUNCATED", "scales section ends early")
    scale_bits = np.frombuffer(buf, "<u4", ns, pos)
    pos += 4 * ns
    for bits in scale_bits.tolist():
        if bits & 0x7FFFFFFF >= 0x7F800000:
            raise _fail("FLT_ERR_NONFINITE", "scale is inf or NaN")
        if bits & 0x80000000:
            raise _fail("FLT_ERR_RANGE", "negative scale")
    indices: list[int] = []
    if fmt == IndexFormat.VARINT:
        pos = _decode_varint(buf, pos, n, k, indices)
    elif fmt == IndexFormat.BITMAP:
        pos = _decode_bitmap(buf, pos, n, k, indices)
    elif fmt == IndexFormat.RICE:
        pos = _decode_rice(buf, pos, n, k, rice, indices)
    else:
        coded: list[int] = []
        pos = _decode_rice(buf, pos, n, k, rice, indices, coded, vr)
    if fmt == IndexFormat.RICE_VALUES:
        values = np.array(coded, dtype=np.int8)
    else:
        if len(buf) - pos < k:
            raise _fail("FLT_ERR_TRUNCATED", "values section ends early")
        values = np.frombuffer(buf, np.int8, k, pos)
        pos += k
        if np.any(values == -128):
            raise _fail("FLT_ERR_RANGE", "value -128")
    delta = SparseDelta(
        n=n,
        indices=np.array(indices, dtype=np.uint32),
        values=values.copy(),
        scales=scale_bits.astype(np.uint32).view(np.float32).copy(),
        mode=qmode,
        block_size=block,
    )
    if np.any((delta.scale_per_value() == 0) & (delta.values != 0)):
        raise _fail("FLT_ERR_FORMAT", "zero scale with nonzero values")
    if pos != len(buf):
        raise _fail("FLT_ERR_FORMAT", f"{len(buf) - pos} trailing bytes")
    return delta
