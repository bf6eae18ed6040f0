"""Output directories: made (with parents) and probed for writing before any work starts, so a
bad --out is one line naming it, not an error halfway through a run."""

from __future__ import annotations

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
