"""A minimal, bounds-checked reader of FlatBuffers binary tables (read-only).

The FlatBuffers wire format (https://flatbuffers.dev/internals/): a root ``uoffset`` (u32) at
byte 0 points at a table; a table starts with an ``soffset`` (i32) back to its vtable; the
vtable lists u16 byte offsets of the fields; reference fields (tables, vectors, strings) hold a
u32 offset relative to the field's own position; vectors start with a u32 length.

Every read is checked against the buffer: a truncated or corrupt file raises
:class:`FlatbufferError` (never IndexError or struct.error, never a wrong silent value).
"""

from __future__ import annotations

import struct

import numpy as np


class FlatbufferError(ValueError):
    """The bytes are not a well-formed flatbuffer (truncated, out-of-range offset, ...)."""


_SCALARS = {
    "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8, "?": 1,
}


class Buffer:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data).cast("B")
        self.size = len(self.data)

    def check(self, pos: int, n: int) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise FlatbufferError(
                f"read of {n} bytes at offset {pos} outside the {self.size}-byte buffer"
            )

    def scalar(self, fmt: str, pos: int):
        n = _SCALARS[fmt]
        self.check(pos, n)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def root(self) -> Table:
        return Table(self, self.scalar("I", 0))


class Table:
    """One table: fields by index (the order of the schema)."""

    def __init__(self, buf: Buffer, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vt = pos - buf.scalar("i", pos)
        self.vt = vt
        self.vt_size = buf.scalar("H", vt)
        if self.vt_size < 4 or self.vt_size % 2:
            raise FlatbufferError(f"bad vtable size {self.vt_size} at offset {vt}")
        buf.check(vt, self.vt_size)

    def _field(self, index: int) -> int:
        """Absolute position of field `index`, or 0 when absent."""
        entry = 4 + 2 * index
        if entry >= self.vt_size:
            return 0
        off = self.buf.scalar("H", self.vt + entry)
        return self.pos + off if off else 0

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def scalar(self, index: int, fmt: str, default=0):
        p = self._field(index)
        return self.buf.scalar(fmt, p) if p else default

    def _ref(self, index: int) -> int:
        p = self._field(index)
        if not p:
            return 0
        return p + self.buf.scalar("I", p)

    def table(self, index: int) -> Table | None:
        p = self._ref(index)
        return Table(self.buf, p) if p else None

    def _vector(self, index: int) -> tuple[int, int]:
        p = self._ref(index)
        if not p:
            return 0, 0
        n = self.buf.scalar("I", p)
        return p + 4, n

    def string(self, index: int) -> str | None:
        start, n = self._vector(index)
        if not start:
            return None
        self.buf.check(start, n)
        return bytes(self.buf.data[start : start + n]).decode("utf-8", errors="replace")

    def vector_scalars(self, index: int, dtype: str) -> np.ndarray | None:
        """A vector of scalars as a numpy array (copied), or None when absent."""
        start, n = self._vector(index)
        if not start:
            return None
        dt = np.dtype(dtype).newbyteorder("<")
        self.buf.check(start, n * dt.itemsize)
        return np.frombuffer(self.buf.data, dtype=dt, count=n, offset=start).copy()

    def vector_bytes(self, index: int) -> bytes | None:
        start, n = self._vector(index)
        if not start:
            return None
        self.buf.check(start, n)
        return bytes(self.buf.data[start : start + n])

    def vector_tables(self, index: int) -> list[Table]:
        start, n = self._vector(index)
        if not start:
            return []
        self.buf.check(start, 4 * n)
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(Table(self.buf, p + self.buf.scalar("I", p)))
        return out
