"""flt_status_t names by value, read from the X-macro list in firmware/runtime/flt_status.h
so the Python side can never drift from the C enum."""

from __future__ import annotations

import re
from functools import cache

from fltiny.native.build import RUNTIME_DIR


@cache
def status_names() -> tuple[str, ...]:
    text = (RUNTIME_DIR / "flt_status.h").read_text()
    pairs = sorted((int(v), name) for name, v in re.findall(r"X\((FLT_\w+), (\d+),", text))
    return tuple(name for _, name in pairs)


def status_name(code: int) -> str:
    names = status_names()
    return names[code] if 0 <= code < len(names) else f"status {code}"
