"""Server-driven model selection: a model family per board, one federation per family.

``fltiny run --fleet qemu-m3=2,qemu-m7=2 --model auto``: the candidates are the dataset's zoo
families (``--family MODEL[=DIR]`` narrows them and names their bundles), tried per board type
from the largest tier down (fltiny.models.zoo ``tier``: tiny 0, small 1, gateway 2). A
candidate fits when its firmware for that board builds and the build's memory report is within
the board's RAM and flash budget (fltiny.build.firmware, the same verdict as ``fltiny build``);
the board gets the first that fits. ``--board-model BOARD=MODEL`` fixes a board type's model
instead (it must fit too). A board for which nothing fits is one line naming the board, its
budget and what each candidate needed. Verdicts are cached with the firmware
(build/fw-cache/<board>-<key>: the ELF, or ``nofit.json``), so a second run builds nothing.

Then one federation per family runs in the same process and the same run directory, all at
once (a thread each, over its own boards): its own bundle, strategy state, global model,
held-out evaluation (the family's own C on the host) and run store in ``OUT/<model>/``
(metrics.json/.csv/.png, run.sqlite: ``fltiny audit`` / ``ctl`` / ``dashboard --run
OUT/<model>``), with the same round settings. The fleet's data is partitioned once over every
board (a device keeps the fleet user it would have in a single-model run), and each family's
blobs are quantized for its model. Every DELTA is replayed on the host through the family's
HostRound, as in a single-model run. ``OUT/families.json`` (the selection with every
candidate's memory verdict, and per family the devices, rounds, final model sha256, held-out and
personal metric, bytes, replay counts), ``families.csv`` (per round, the families side by side)
and ``families.png`` compare them.
"""

from __future__ import annotations

import csv
import json
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fltiny.errors import FitError, UsageError

if TYPE_CHECKING:
    from fltiny.boards import Board
    from fltiny.experiment import Experiment, ExperimentResult, RunOptions
    from fltiny.server.rounds import RoundMetrics

Say = Callable[[str], None]
NOFIT = "nofit.json"


@dataclass(frozen=True)
class Fit:
    """One candidate model on one board: the memory report's verdict (``used`` None: the link
    itself overflowed, no report) and, when it fits, the firmware."""

    board: str
    model: str
    fits: bool
    flash_used: int | None
    flash_budget: int
    ram_used: int | None
    ram_budget: int
    reason: str = ""
    elf: Path | None = None

    def need(self) -> str:
        if self.flash_used is None or self.ram_used is None:
            return f"{self.model}: {self.reason}"
        return f"{self.model} needs RAM {self.ram_used:,} B, flash {self.flash_used:,} B"

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d["elf"] = None if self.elf is None else str(self.elf)
        return d


@dataclass(frozen=True)
class BoardChoice:
    """The model a board type runs, how it was chosen (auto, override, model) and every
    candidate tried, largest first; the last one is the chosen one."""

    board: str
    model: str
    how: str
    tried: tuple[Fit, ...]

    @property
    def fit(self) -> Fit:
        return self.tried[-1]

    def line(self) -> str:
        f = self.fit
        text = (f"{self.board}: {self.model} ({self.how}; flash {f.flash_used:,} of "
                f"{f.flash_budget:,} B, RAM {f.ram_used:,} of {f.ram_budget:,} B)")
        skipped = [t.need() for t in self.tried[:-1]]
        return text + (f"; too big: {'; '.join(skipped)}" if skipped else "")


@dataclass
class FamilyPlan:
    """One federation: a model, its bundle, its boards (fleet order) and its devices' slots in
    the fleet's partition."""

    model: str
    bundle: Path
    boards: list[tuple[Board, int]]
    slots: list[int]
    choices: list[BoardChoice] = field(default_factory=list)

    @property
    def devices(self) -> int:
        return len(self.slots)


@dataclass
class FamilyRun:
    """What ``run_families`` produced: one ExperimentResult per family (largest first), the
    selection, and the side-by-side report files."""

    results: dict[str, ExperimentResult]
    choices: list[BoardChoice]
    summary: dict[str, Any]
    files: list[Path]
    seconds: float


def check_family_options(opts: RunOptions) -> None:
    """What a run with a model per board refuses, before any work (one line each)."""
    from fltiny.experiment import AUTO_MODEL
    from fltiny.models.zoo import ZOO

    if opts.on_ports:
        raise UsageError("--model auto / --board-model choose and build the firmware of the boards "
                         "'fltiny run' starts (--fleet); boards on --port / --fleet-file run "
                         "the model they were flashed with: pass that model's --bundle")
    if opts.data.bundle is not None:
        raise UsageError("--bundle names one export; with --model auto / --board-model give each "
                         "family's bundle as --family MODEL=DIR")
    if opts.gateways > 1:
        raise UsageError("--gateways with a model per board is not supported: each family is "
                         "one federation on one bridge")
    if opts.transport != "serial":
        raise UsageError("--transport mqtt with a model per board is not supported: the "
                         "families' boards use their serial links")
    names = [n for n, _ in opts.fleet]
    for b, m in opts.board_models:
        if b not in names:
            raise UsageError(f"--board-model {b}={m}: board {b} is not in the fleet "
                             f"({', '.join(names)})")
    over = [b for b, _ in opts.board_models]
    if len(over) != len(set(over)):
        raise UsageError("--board-model: a board is named twice")
    fams = [m for m, _ in opts.families]
    if len(fams) != len(set(fams)):
        raise UsageError("--family: a model is named twice")
    if opts.families and opts.data.model != AUTO_MODEL:
        raise UsageError("--family names the candidates of --model auto: add --model auto")
    for m in [*fams, *(m for _, m in opts.board_models)]:
        z = ZOO.get(m)
        if z is None:
            raise UsageError(f"unknown zoo model '{m}'; choose one of: {', '.join(sorted(ZOO))}")
        if z.dataset != opts.data.dataset:
            raise UsageError(f"model {m} is for dataset {z.dataset}, the run's is "
                             f"{opts.data.dataset} (--dataset)")


def candidates(opts: RunOptions) -> list[str]:
    """The candidate models of --model auto, largest tier first."""
    from fltiny.models.zoo import ZOO, families

    if opts.families:
        return sorted((m for m, _ in opts.families), key=lambda m: -ZOO[m].tier)
    found = [m.name for m in families(opts.data.dataset)]
    if not found:
        raise UsageError(f"no zoo model for dataset {opts.data.dataset}")
    return found


def size_firmware(board: Board, bundle: Path, root: Path, say: Say) -> Fit:
    """Build (or reuse) ``bundle``'s firmware for ``board`` and return the memory verdict; a
    firmware over budget is a Fit with fits False, cached as nofit.json beside the ELF would
    be (same key: bundle content, board file, firmware sources)."""
    from fltiny.build.memory import memory_report
    from fltiny.export.bundle import Bundle
    from fltiny.run.runner import cached_firmware, firmware_key

    b = Bundle.load(bundle)
    cache = Path(root).resolve() / "fw-cache" / f"{board.name}-{firmware_key(board, b.content_hash)}"
    nofit = cache / NOFIT
    if nofit.is_file():
        d = json.loads(nofit.read_text())
        say(f"{board.name}: {b.name} does not fit (cached verdict {nofit})")
        return Fit(board.name, b.name, False, d["flash_used"], board.flash_bytes, d["ram_used"],
                   board.ram_bytes, d["reason"])
    try:
        elf = cached_firmware(board, bundle, root, say)
    except FitError as exc:
        rep = exc.report
        flash = getattr(rep, "flash_used", None)
        ram = getattr(rep, "ram_used", None)
        cache.mkdir(parents=True, exist_ok=True)
        nofit.write_text(json.dumps({"flash_used": flash, "ram_used": ram, "reason": str(exc)}))
        # one line per candidate: what overflows and by how much (the full report is the
        # build's, 'fltiny build --board ...' prints it)
        short = (f"{'RAM' if not rep.ram_ok else 'flash'} {ram if not rep.ram_ok else flash} B "
                 f"of {board.ram_bytes if not rep.ram_ok else board.flash_bytes} B"
                 if rep is not None else str(exc))
        say(f"{board.name}: {b.name} does not fit ({short})")
        return Fit(board.name, b.name, False, flash, board.flash_bytes, ram, board.ram_bytes,
                   str(exc))
    rep = memory_report(elf, board)
    return Fit(board.name, b.name, True, rep.flash_used, board.flash_bytes, rep.ram_used,
               board.ram_bytes, elf=elf)


def choose(board: Board, models: list[str], fit_of: Callable[[Board, str], Fit],
           how: str = "auto") -> BoardChoice:
    """The first of ``models`` (largest first) that fits ``board``; FitError (one line: the
    board, its budget, what each candidate needs) when none does."""
    from fltiny.boards import human_bytes

    tried: list[Fit] = []
    for m in models:
        f = fit_of(board, m)
        tried.append(f)
        if f.fits:
            return BoardChoice(board.name, m, how, tuple(tried))
    what = "no model family fits" if how == "auto" else f"{models[0]} ({how}) does not fit"
    raise FitError(f"board {board.name} (RAM {human_bytes(board.ram_bytes)}, flash "
                   f"{human_bytes(board.flash_bytes)}): {what}: "
                   + "; ".join(t.need() for t in tried)
                   + " (a bigger board, or a smaller --family / --board-model)")


def plan_families(opts: RunOptions, fit_of: Callable[[Board, str], Fit],
                  bundle_of: Callable[[str], Path]) -> list[FamilyPlan]:
    """Each board type's model (override, else auto selection, else --model), grouped into
    one plan per model, largest tier first; slots follow the fleet's order."""
    from fltiny.boards import get_board
    from fltiny.experiment import AUTO_MODEL
    from fltiny.models.zoo import ZOO

    override = dict(opts.board_models)
    auto = opts.data.model == AUTO_MODEL
    cands = candidates(opts) if auto else []
    choices: dict[str, BoardChoice] = {}
    plans: dict[str, FamilyPlan] = {}
    slot = 0
    for name, n in opts.fleet:
        board = get_board(name)
        if not board.emulated:
            raise UsageError(f"board {board.name} is real hardware; 'fltiny run' starts emulated "
                             "boards (qemu-*, native): drive flashed boards with --port or "
                             "--fleet-file")
        if name not in choices:
            if name in override:
                choices[name] = choose(board, [override[name]], fit_of, "--board-model")
            elif auto:
                choices[name] = choose(board, cands, fit_of)
            else:
                choices[name] = choose(board, [opts.data.model_name()], fit_of, "--model")
        c = choices[name]
        plan = plans.get(c.model)
        if plan is None:
            plan = plans[c.model] = FamilyPlan(c.model, bundle_of(c.model), [], [])
        plan.boards.append((board, n))
        plan.slots += list(range(slot, slot + n))
        if c not in plan.choices:
            plan.choices.append(c)
        slot += n
    return sorted(plans.values(), key=lambda p: -ZOO[p.model].tier)


def _bundle_resolver(opts: RunOptions, say: Say) -> Callable[[str], Path]:
    from fltiny.export.bundle import Bundle
    from fltiny.workflow import ensure_bundle

    given = {m: d for m, d in opts.families if d is not None}
    memo: dict[str, Path] = {}

    def bundle_of(model: str) -> Path:
        if model not in memo:
            if model in given:
                b = Bundle.load(Path(given[model]))
                if b.name != model:
                    raise UsageError(f"--family {model}={given[model]}: the bundle holds "
                                     f"{b.name}, not {model}")
                memo[model] = Path(given[model])
            else:
                memo[model] = Path(ensure_bundle(model, opts.data.dataset, say,
                                                 Path(opts.build_root)))
        return memo[model]

    return bundle_of


def run_families(opts: RunOptions,
                 progress: Callable[[str, RoundMetrics], None] = lambda _f, _m: None,
                 say: Say = print, log: Say = print) -> FamilyRun:
    """Select a model per board type, then run one federation per model at once, over one
    fleet of emulated boards, all in ``opts.out``; the side-by-side report at the end."""
    from fltiny.outdir import check_out_dir

    t0 = time.perf_counter()
    out = Path(opts.out)
    check_out_dir(out)
    if not opts.resume:
        for store in sorted(out.glob("*/run.sqlite")):
            raise UsageError(f"{store} exists: pass --resume to continue that run, or choose "
                             "another --out")
    bundle_of = _bundle_resolver(opts, say)
    fits: dict[tuple[str, str], Fit] = {}

    def fit_of(board: Board, model: str) -> Fit:
        if (board.name, model) not in fits:
            say(f"sizing {model} for {board.name}")
            fits[board.name, model] = size_firmware(board, bundle_of(model), opts.build_root, say)
        return fits[board.name, model]

    plans = plan_families(opts, fit_of, bundle_of)
    choices = [c for p in plans for c in p.choices]
    for c in choices:
        say("model selection: " + c.line())
    total = sum(n for _, n in opts.fleet)
    exps = [_experiment(opts, p, total, say, log) for p in plans]

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, _terminate)
    stores: list[Any] = []
    try:
        results = _run_all(opts, plans, exps, stores, progress, say, log)
    finally:
        for s in stores:
            s.close()
        signal.signal(signal.SIGTERM, old_term)
    summary = family_summary(plans, results)
    files = write_family_report(out, summary, {p.model: results[p.model].rounds for p in plans})
    return FamilyRun(results, choices, summary, files, time.perf_counter() - t0)


def _experiment(opts: RunOptions, plan: FamilyPlan, total: int, say: Say,
                log: Say) -> Experiment:
    from fltiny.experiment import Experiment

    settings = replace(opts, data=replace(opts.data, model=plan.model, bundle=plan.bundle),
                       out=Path(opts.out) / plan.model, board_models=(), families=(),
                       fleet=tuple((b.name, n) for b, n in plan.boards))
    return Experiment(settings, plan.devices, say=say, log=log, slots=tuple(plan.slots),
                      fleet_devices=total)


def _run_all(opts: RunOptions, plans: list[FamilyPlan], exps: list[Experiment],
             stores: list[Any], progress: Callable[[str, RoundMetrics], None], say: Say,
             log: Say) -> dict[str, ExperimentResult]:
    from fltiny.bridge.fleet import BridgeFleet
    from fltiny.run.runner import FiguredFleet, collect, start_emulated
    from fltiny.server.store import RunStore

    results: dict[str, ExperimentResult] = {}
    with ExitStack() as stack:
        fleets = []
        for p, exp in zip(plans, exps, strict=True):
            elfs = {c.board: c.fit.elf for c in p.choices}
            blobs = exp.blobs(opts.max_windows)
            exp.evaluator  # noqa: B018 - held-out backbone features before the rounds
            say(f"family {p.model}: " + ", ".join(f"{n} x {b.name}" for b, n in p.boards)
                + f", devices {', '.join(str(b.device_id) for b in blobs)}")
            endpoints = start_emulated(stack, p.boards, elfs, blobs, say)
            bf = BridgeFleet(endpoints, exp.host, model_hash=exp.bundle.model_hash,
                             global_delta=opts.global_delta, down_topk=opts.server.down_topk,
                             down_bits=opts.server.down_bits, send_chunk=opts.send_chunk,
                             log=lambda m, f=p.model: log(f"[{f}] {m}"))
            stack.callback(bf.close)
            fleets.append(bf)
        metrics: dict[str, list[RoundMetrics]] = {}
        errors: dict[str, BaseException] = {}

        def one(p: FamilyPlan, exp: Experiment, bf: BridgeFleet) -> None:
            try:  # SQLite: the store lives in the thread that uses it
                store = exp.open_store(opts.resume)
                try:
                    metrics[p.model] = exp.run_rounds(FiguredFleet(bf), store,
                                                      lambda m, f=p.model: progress(f, m))
                finally:
                    store.close()
            except BaseException as exc:  # re-raised in the caller's thread below
                errors[p.model] = exc

        threads = [threading.Thread(target=one, args=(p, exp, bf), daemon=True,
                                    name=f"family-{p.model}")
                   for p, exp, bf in zip(plans, exps, fleets, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        for p in plans:  # the first family's failure, as it was raised
            if p.model in errors:
                raise errors[p.model]
        for p, exp, bf in zip(plans, exps, fleets, strict=True):
            store = RunStore(exp.store_path)
            stores.append(store)
            rows, summary = collect(store, exp.host.n_params)
            counts = {b.name: n for b, n in p.boards}
            summary.update({
                "fleet": counts, "devices_without_host_data": 0,
                "replays_this_process": bf.replays,
                "replay_mismatches_this_process": bf.replay_mismatches,
                "family": {"model": p.model, "choices": [asdict(c) | {"tried": [
                    t.record() for t in c.tried]} for c in p.choices]},
                "title": f"{p.model} on {opts.data.dataset}: "
                         + ", ".join(f"{n} x {b}" for b, n in counts.items())
                         + " (one family of a mixed fleet)",
            })
            results[p.model] = exp.result(store, metrics[p.model], summary, rows)
    return results


def _final(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(vals[-1]) if vals else None


def _first(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(vals[0]) if vals else None


def family_summary(plans: list[FamilyPlan], results: dict[str, ExperimentResult]
                   ) -> dict[str, Any]:
    """The families side by side (families.json ``families``), largest first."""
    fams = []
    for p in plans:
        res = results[p.model]
        s, rows = res.summary, res.rounds
        metric = next((k for k in ("accuracy", "mae") if any(k in r for r in rows)), None)
        done = [r for r in rows if r["round"] > 0]
        wire = s.get("wire", {})
        fams.append({
            "model": p.model, "bundle": str(p.bundle), "out": str(res.store.parent),
            "boards": {b.name: n for b, n in p.boards}, "devices": p.devices,
            "head_params": s.get("head_params"), "rounds": len(done),
            "model_sha256": rows[-1]["sha256"] if rows else None,
            "metric": metric,
            "held_out_initial": _first(rows, metric) if metric else None,
            "held_out_final": _final(rows, metric) if metric else None,
            "personal_first": _first(rows, f"personal_{metric}") if metric else None,
            "personal_final": _final(rows, f"personal_{metric}") if metric else None,
            "up_bytes_per_device_round": wire.get("up_bytes_per_device_round"),
            "down_bytes_per_device_round": wire.get("down_bytes_per_device_round"),
            "device_rounds": s.get("device_rounds", 0), "replayed": s.get("replayed", 0),
            "replay_identical": s.get("replay_identical", 0),
            "replay_mismatches": s.get("replay_mismatches", 0),
            "firmware": {c.board: {"flash_used": c.fit.flash_used,
                                   "flash_budget": c.fit.flash_budget,
                                   "ram_used": c.fit.ram_used, "ram_budget": c.fit.ram_budget}
                         for c in p.choices},
            "seconds": res.seconds,
        })
    selection = [{"board": c.board, "model": c.model, "how": c.how,
                  "tried": [t.record() for t in c.tried]} for p in plans for c in p.choices]
    return {"families": fams, "selection": selection}


FAMILY_COLUMNS = (("devices", "devices", "{}"), ("rounds", "rounds", "{}"),
                  ("held_out_initial", "held-out initial", "{:.4f}"),
                  ("held_out_final", "held-out final", "{:.4f}"),
                  ("personal_first", "personal round 1", "{:.4f}"),
                  ("personal_final", "personal final", "{:.4f}"),
                  ("up_bytes_per_device_round", "up B/dev-round", "{:.0f}"),
                  ("down_bytes_per_device_round", "down B/dev-round", "{:.0f}"),
                  ("replayed", "replayed", "{}"), ("replay_mismatches", "mismatches", "{}"))


def family_table(summary: dict[str, Any]) -> list[str]:
    """The families side by side as text: one column per family."""
    fams = summary["families"]
    width = max([18, *(len(f["model"]) + 2 for f in fams)])
    lines = [f"{'':18s}" + "".join(f"{f['model']:>{width}s}" for f in fams)]
    rows = [("boards", [", ".join(f"{n} x {b}" for b, n in f["boards"].items()) for f in fams])]
    for key, title, fmt in FAMILY_COLUMNS:
        rows.append((title, ["-" if f.get(key) is None else fmt.format(f[key]) for f in fams]))
    rows.append(("model sha256", [(f["model_sha256"] or "-")[:12] for f in fams]))
    for title, cells in rows:
        lines.append(f"{title:18s}" + "".join(f"{c:>{width}s}" for c in cells))
    return lines


def write_family_report(out: Path, summary: dict[str, Any],
                        rounds: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """families.json (the summary and the per-round rows of each family), families.csv (one
    row per round, each family's metrics in its own columns) and families.png."""
    out.mkdir(parents=True, exist_ok=True)
    js = out / "families.json"
    js.write_text(json.dumps({**summary, "rounds": rounds}, indent=2, sort_keys=True))
    metrics = []
    for f in summary["families"]:
        m = f["metric"]
        if m:
            metrics += [(f["model"], m), (f["model"], f"personal_{m}")]
    metrics += [(f["model"], k) for f in summary["families"]
                for k in ("participants", "bytes_up", "bytes_down")]
    cols = ["round", *(f"{model}:{k}" for model, k in metrics)]
    by_round: dict[int, dict[str, Any]] = {}
    for model, rows in rounds.items():
        for r in rows:
            row = by_round.setdefault(int(r["round"]), {"round": int(r["round"])})
            for m, k in metrics:
                if m == model and r.get(k) is not None:
                    row[f"{model}:{k}"] = r[k]
    cs = out / "families.csv"
    with cs.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for rnd in sorted(by_round):
            w.writerow({c: by_round[rnd].get(c, "") for c in cols})
    png = out / "families.png"
    _plot(summary, rounds, png)
    return [js, cs, png]


def _plot(summary: dict[str, Any], rounds: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for f in summary["families"]:
        m, rows = f["metric"], rounds[f["model"]]
        if not m:
            continue
        held = [(r["round"], r[m]) for r in rows if r.get(m) is not None]
        pers = [(r["round"], r[f"personal_{m}"]) for r in rows
                if r.get(f"personal_{m}") is not None]
        boards = ", ".join(f"{n} x {b}" for b, n in f["boards"].items())
        line = ax.plot([x for x, _ in held], [y for _, y in held], marker="o",
                       label=f"{f['model']} held-out ({boards})")[0]
        if pers:
            ax.plot([x for x, _ in pers], [y for _, y in pers], marker="s", linestyle="--",
                    color=line.get_color(), label=f"{f['model']} personal (mean)")
    ax.set_xlabel("round")
    ax.set_ylabel(next((f["metric"] for f in summary["families"] if f["metric"]), "metric"))
    ax.set_title("model families side by side")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
