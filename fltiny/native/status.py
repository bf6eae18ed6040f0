"""The runtime's status codes in Python: ``Status`` is generated at import from the X-macro list
in firmware/runtime/core/flt_status.h (name, value and text), so it can never drift from the C enum.

``describe(code)`` turns any returned code into words ("value out of range (FLT_ERR_RANGE)"),
also for values the enum does not know.
"""

from __future__ import annotations

import re
from enum import IntEnum
from functools import cache

from fltiny.native.build import RUNTIME_DIR

_ITEM = re.compile(r'X\((FLT_\w+),\s*(\d+),\s*"([^"]*)"\)')


@cache
def _entries() -> tuple[tuple[str, int, str], ...]:
    text = (RUNTIME_DIR / "core" / "flt_status.h").read_text()
    found = tuple((name, int(v), words) for name, v, words in _ITEM.findall(text))
    if not found or found[0][:2] != ("FLT_OK", 0):
        raise RuntimeError(f"no FLT_STATUS_LIST X-macro starting with FLT_OK in {RUNTIME_DIR}")
    return found


Status = IntEnum("Status", [(name.removeprefix("FLT_"), v) for name, v, _ in _entries()])  # type: ignore[misc]
Status.__doc__ = "flt_status_t: Status.OK, Status.ERR_RANGE, ... (values from flt_status.h)."

_TEXT = {v: words for _name, v, words in _entries()}


def status_names() -> tuple[str, ...]:
    """C names (FLT_OK, FLT_ERR_ARG, ...) by value."""
    return tuple(name for name, _, _ in sorted(_entries(), key=lambda e: e[1]))


def status_name(code: int) -> str:
    """The C name of a status (FLT_ERR_RANGE), or "status N" for an unknown value."""
    try:
        return "FLT_" + Status(code).name
    except ValueError:
        return f"status {code}"


def describe(code: int) -> str:
    """A status in words with its C name: "value out of range (FLT_ERR_RANGE)"."""
    words = _TEXT.get(int(code))
    return f"{words} ({status_name(code)})" if words else f"unknown status {int(code)}"


def check(call: str, code: int, hint: str = "") -> None:
    """Raise RuntimeStatusError naming ``call`` and the status in words unless it is OK."""
    if code != Status.OK:
        from fltiny.errors import RuntimeStatusError

        raise RuntimeStatusError(call, int(code), hint)
