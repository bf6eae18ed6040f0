"""An independent decoder of the device data blob (docs/boards.md "Data blob"), for tests: the
device's parser is firmware/app/flt_data.c, the host only encodes (fltiny.devices.data)."""

from __future__ import annotations

import zlib

import numpy as np

from fltiny.devices.data import HEADER, HEADER_SIZE, MAGIC, VERSION, DataBlob
from fltiny.errors import DataError


def decode(raw: bytes) -> DataBlob:
    if len(raw) < HEADER_SIZE:
        raise DataError("data blob shorter than its 48-byte header")
    (magic, version, hsize, dev, count, steps, ch, kind, n_t, _r, scale, zp, mhash, crc,
     n_test) = HEADER.unpack_from(raw)
    if magic != MAGIC or hsize != HEADER_SIZE or version != VERSION:
        raise DataError("not a fltiny data blob (magic/version/header size)")
    nw = count * steps * ch
    pad = (-nw) % 4
    nt = count * (1 if kind == 0 else n_t) * 4
    body = raw[HEADER_SIZE : HEADER_SIZE + nw + pad + nt]
    if len(body) != nw + pad + nt or zlib.crc32(body) != crc:
        raise DataError("data blob truncated or its CRC does not match")
    w = np.frombuffer(body[:nw], dtype=np.int8).reshape(count, steps, ch)
    tail = body[nw + pad :]
    labels = np.frombuffer(tail, dtype="<i4").astype(np.int32) if kind == 0 else None
    targets = np.frombuffer(tail, dtype="<f4").reshape(count, n_t) if kind == 1 else None
    if n_test >= count:
        raise DataError(f"data blob: {n_test} test windows of {count}")
    return DataBlob(dev, w, labels, targets, scale, zp, mhash, n_test)
