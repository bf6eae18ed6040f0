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
from .project import Project, RoundFeatures, budget_board, render_project

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
                   ram_budget: int | None = None, **render_kw) -> FirmwareBuild:
    """Render the project for `board`, build it and check its memory against the budget.
    Raises ToolchainError when the build fails, FitError (a ToolchainError) when the firmware
    exceeds the board's flash or RAM (the message carries the report and the biggest symbols).
    `ram_budget` (bytes): the firmware's RAM instead of the board's (build_in_budget)."""
    out = Path(out) if out else default_out(board)
    if ram_budget is not None and not render_only:
        return build_in_budget(board, Path(bundle), out, ram_budget, progress=progress,
                               **render_kw)
    if ram_budget is not None:
        render_kw["ram_budget"] = ram_budget
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


def _link(board: Board, bundle: Path, out: Path, **render_kw) -> tuple[Project, BuildResult,
                                                                      MemoryReport]:
    project = render_project(board, bundle, out, **render_kw)
    result = build_project(project.path, project.board, project.env_name)
    if result.elf is None:
        raise FitError(f"the firmware does not fit board '{board.name}': {result.link_overflow}")
    return project, result, memory_report(result.elf, project.board)


def fitting_features(asked: RoundFeatures, ram_used: int, ram_budget: int,
                     n_params: int) -> RoundFeatures:
    """The round state to build in `ram_budget` bytes, given the RAM a link with `asked` took:
    from that RAM less every asked feature's (RoundFeatures.ram_bytes), each feature asked for
    is kept, most valued first (error feedback, personal serving, FedDyn drift: the reverse of
    DROP_ORDER), when it still fits."""
    costs = {n: RoundFeatures.ram_bytes(n, n_params) for n in RoundFeatures.DROP_ORDER}
    room = ram_budget - (ram_used - sum(c for n, c in costs.items() if getattr(asked, n)))
    keep: dict[str, bool] = {}
    for name in reversed(RoundFeatures.DROP_ORDER):
        keep[name] = bool(getattr(asked, name)) and costs[name] <= room
        room -= costs[name] if keep[name] else 0
    return RoundFeatures(**keep)


def build_in_budget(board: Board, bundle: Path, out: Path, ram_budget: int, *,
                    progress: Callable[[str], None] = lambda _m: None,
                    features: RoundFeatures | None = None, **render_kw) -> FirmwareBuild:
    """The firmware of `board` in `ram_budget` bytes of RAM (docs/boards.md "RAM budget"):
    linked first without a window store and with all the round state asked for (`features`);
    when that is over the budget, the round state that fits is kept, most valued first
    (fitting_features: error feedback, personal serving, FedDyn drift), the rest left out;
    when even none fits, FitError (one line).
    Then the window store takes what is left, when that holds at least MIN_STORE_WINDOWS
    windows (else the firmware has none: the device trains on its data blob)."""
    budget = budget_board(board, ram_budget)  # refuses a budget above the board's RAM
    feats = RoundFeatures() if features is None else features
    rest = dataclasses.replace(board, store_windows=0)
    kw = dict(render_kw, ram_budget=ram_budget)
    progress(f"rendering the PlatformIO project for {board.name} in {out} "
             f"(RAM budget {ram_budget} B)")
    project, result, report = _link(rest, bundle, out, features=feats, **kw)
    if not report.ram_ok and report.flash_ok:
        # what fits, most valued first (the reverse of DROP_ORDER), from the RAM without any
        feats = fitting_features(feats, report.ram_used, report.ram_budget, project.n_params)
        progress(f"round state {feats.note()}")
        project, result, report = _link(rest, bundle, out, features=feats, **kw)
    while not report.ram_ok and report.flash_ok and feats.left_out() != list(
            RoundFeatures.DROP_ORDER):  # an estimate was short (alignment): one more out
        name = next(n for n in RoundFeatures.DROP_ORDER if getattr(feats, n))
        feats = dataclasses.replace(feats, **{name: False})
        progress(f"round state {feats.note()}")
        project, result, report = _link(rest, bundle, out, features=feats, **kw)
    if not report.ok:
        left = ", ".join(RoundFeatures.NAMES[n] for n in feats.left_out()) or "nothing"
        raise FitError(f"{' '.join(report.lines())}: the firmware of board '{board.name}' needs "
                       f"{report.ram_used} B of RAM without a window store (left out: {left}), "
                       f"more than the {ram_budget} B budget; biggest: "
                       + ", ".join(f"{n} {b} B" for n, b in report.top_ram[:4])
                       + " (raise --ram-budget or use a smaller model)", report)
    free = report.ram_budget - report.ram_used
    if board.emulated or render_kw.get("sensor") is not None:
        from fltiny.export.bundle import read_bundle

        from .project import store_layout

        manifest, _head, _bb = read_bundle(bundle)
        want = dataclasses.replace(budget, store_windows=board.store_windows)
        store = store_layout(want, manifest, render_kw.get("max_windows") or board.max_windows,
                             stride=render_kw.get("window_stride"), store_ram=free)
        if store.capacity >= MIN_STORE_WINDOWS:
            progress(f"window store: {store.capacity} windows in the {free} B the rest leaves")
            project, result, report = _link(want, bundle, out, features=feats, store_ram=free,
                                            **kw)
            smaller = _store_that_fits(project, report)
            if smaller is not None:
                fewer = dataclasses.replace(want, store_windows=smaller)
                project, result, report = _link(fewer, bundle, out, features=feats,
                                                store_ram=free, **kw)
            if not report.ram_ok:  # (alignment): no store rather than no firmware
                project, result, report = _link(rest, bundle, out, features=feats, **kw)
    if not report.ok:
        raise FitError(" ".join(report.lines()) + ": " + report.failure(), report)
    return FirmwareBuild(project, result, report)
