"""Output directories: checked before any work starts, so a bad --out is one line naming it,
not an error halfway through a run. ``check_out_dir`` writes nothing (a refused command leaves
no directory behind); ``prepare_out_dir`` makes the directory and probes it."""

from __future__ import annotations

import os
from pathlib import Path

from fltiny.errors import UsageError


def prepare_out_dir(out: Path) -> None:
    """Create ``out`` and check that files can be written in it; UsageError if not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".fltiny-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to output directory {out}: {exc.strerror or exc}") from exc


def check_out_dir(out: Path) -> None:
    """UsageError unless ``out`` is, or can be made as, a writable directory; creates nothing."""
    p = Path(out).absolute()
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"cannot write to output directory {out}: it is a file")
    else:
        parent = p.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"cannot write to output directory {out}: {parent} is not a "
                             "directory")
        p = parent
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to output directory {out}: {p} is not writable")
