"""render + `pio run` + memory report: what `fltiny build --board X` does."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fltiny.boards import REPO_ROOT, Board
from fltiny.errors import FitError

from .memory import MemoryReport, memory_report
from .pio import BuildResult, build_project, check_config
from .project import Project, render_project

# the fewest windows a window store shrunk to fit the RAM keeps (below that: no fit)
MIN_STORE_WINDOWS = 32


@dataclass
class FirmwareBuild:
    project: Project
    result: BuildResult | None  # None when only rendered (and validated)
    report: MemoryReport | None

    @property
    def elf(self) -> Path | None:
        return self.result.elf if self.result else None


def default_out(board: Board) -> Path:
    """build/fw/<board> (or $FLTINY_BUILD_DIR/fw/<board>)."""
    root = os.environ.get("FLTINY_BUILD_DIR")
    return (Path(root) if root else REPO_ROOT / "build") / "fw" / board.name


def build_firmware(board: Board, bundle: Path, out: Path | None = None, *,
                   progress: Callable[[str], None] = lambda _m: None, render_only: bool = False,
                   **render_kw) -> FirmwareBuild:
    """Render the project for `board`, build it and check its memory against the budget.
    Raises ToolchainError when the build fails, FitError (a ToolchainError) when the firmware
    exceeds the board's flash or RAM (the message carries the report and the biggest symbols)."""
    out = Path(out) if out else default_out(board)
    progress(f"rendering the PlatformIO project for {board.name} in {out}")
    project = render_project(board, Path(bundle), out, **render_kw)
    if render_only:
        progress("validating platformio.ini with 'pio project config'")
        check_config(project.path)
        return FirmwareBuild(project, None, None)
    progress(f"pio run ({board.pio_platform}, board {board.pio_board})")
    result = build_project(project.path, board, project.env_name)
    if result.elf is None:
        raise FitError(f"the firmware does not fit board '{board.name}': {result.link_overflow}")
    report = memory_report(result.elf, board)
    smaller = _store_that_fits(project, report)
    if smaller is not None:  # the window store takes what the rest leaves: build once more
        progress(f"window store: {smaller} windows (of {project.store.capacity}) to fit "
                 f"{board.name}'s RAM")
        board = dataclasses.replace(board, store_windows=smaller)
        project = render_project(board, Path(bundle), out, **render_kw)
        result = build_project(project.path, board, project.env_name)
        if result.elf is None:
            raise FitError(f"the firmware does not fit board '{board.name}': "
                           f"{result.link_overflow}")
        report = memory_report(result.elf, board)
    if not report.ok:
        raise FitError(" ".join(report.lines()) + ": " + report.failure(), report)
    return FirmwareBuild(project, result, report)


def _store_that_fits(project: Project, report: MemoryReport) -> int | None:
    """The window store's capacity that brings the RAM within budget when only the RAM is over
    and a store of at least MIN_STORE_WINDOWS windows does it; else None (no rebuild)."""
    store = project.store
    if report.ok or not report.flash_ok or store is None or store.capacity == 0:
        return None
    excess = report.ram_used - report.ram_budget
    cap = store.capacity - -(-excess // store.record_bytes)  # ceil: every excess byte freed
    return cap if cap >= MIN_STORE_WINDOWS else None
