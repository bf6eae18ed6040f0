"""render + `pio run` + memory report: what `fltiny build --board X` does."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fltiny.boards import REPO_ROOT, Board
from fltiny.errors import ToolchainError

from .memory import MemoryReport, memory_report
from .pio import BuildResult, build_project, check_config
from .project import Project, render_project


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
    Raises ToolchainError when the build fails or the firmware exceeds the board's flash or RAM
    (the message carries the report and the biggest symbols)."""
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
        raise ToolchainError(f"the firmware does not fit board '{board.name}': {result.link_overflow}")
    report = memory_report(result.elf, board)
    if not report.ok:
        raise ToolchainError(" ".join(report.lines()) + ": " + report.failure())
    return FirmwareBuild(project, result, report)
