"""RAM and flash per zoo model and board, from the linked ELF plus a measured stack high-water.

    .venv/bin/python bench/memory.py [--models har-tiny ...] [--boards qemu-m4f ...]
                                     [--budget qemu-m4f=32k ...]

Per zoo model (export bundle in build/bench/bundles/<model>, 1 training epoch: sizes do not
depend on the weights' values) and board:
- the DEVICE firmware (`fltiny build`: device loop, runtime, backbone, link buffers) is linked;
  flash = .text + .rodata + .data load image, static RAM = .data + .bss (fltiny.bench.memory);
- the BENCHMARK firmware (FLT_APP_BENCH) paints the free RAM below the stack pointer at boot,
  runs one inference, training, delta encode and a whole round, and reports the deepest stack
  use (stack painting): `stack HWM`. The device loop also frames and sends messages, so its
  stack use can be a little deeper: the linker reserves `stack` bytes for it;
- when the device firmware does not build for a model (the device loop refuses heads whose
  checkpoint exceeds FLT_PORT_CKPT_MAX, 4 kB: har-small and larger), the benchmark firmware's
  ELF is measured instead (`firmware` = bench: backbone + training + delta state, without the
  protocol's frame and message buffers);
- RAM total = static RAM + the stack reserve (what the linker script checks against the budget).
`--budget BOARD=SIZE` adds a row per model for that board built with `fltiny build --ram-budget
SIZE` (docs/boards.md "RAM budget"; default qemu-m4f=32k).
Per model and device link: the RAM by part of `fltiny build`'s report (fltiny.build.memory
RAM_PARTS: window store, model state, round buffers + rx message, delta state, FedDyn drift,
secure aggregation, link buffers, other, stack), the backbone's activation arena, code bytes
(function symbols) and const bytes (read-only objects; `model const` = the generated
backbone's weights and multipliers). Then checks the targets: har-tiny inference + training +
delta state in at most 64 kB RAM and 128 kB flash on Cortex-M4 (the default build), and the
whole device firmware in at most 32 kB of RAM on qemu-m4f with --ram-budget 32k (issue 18).
Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from ontarget_cost import BOARDS, ensure_bundle  # noqa: E402

from fltiny.bench.memory import elf_memory, symbol_bytes  # noqa: E402
from fltiny.bench.ontarget import bench_blob, bench_firmware, run_bench  # noqa: E402
from fltiny.boards import get_board  # noqa: E402
from fltiny.build.memory import memory_report  # noqa: E402
from fltiny.build.project import parse_ram_budget  # noqa: E402
from fltiny.errors import FltinyError  # noqa: E402
from fltiny.models.zoo import ZOO  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TARGET_RAM, TARGET_FLASH = 64 * 1024, 128 * 1024
BUDGET_TARGET = ("har-tiny", "qemu-m4f", 32 * 1024)  # issue 18 item 3

# the bench firmware's buffers (firmware/app/flt_benchmain.c), grouped like RAM_PARTS
BENCH_GROUPS = (("model state", ("b_global", "b_params")),
                ("round buffers + rx message", ("b_velocity", "b_work", "b_features",
                                                "b_feat_q", "b_order")),
                ("delta state", ("b_residual", "b_indices", "b_values", "b_scales",
                                 "b_payload")))


def device_elf(board, bundle: Path, out: Path,
               budget: int | None = None) -> tuple[Path | None, bool, str]:
    """(ELF, fits, message): the device firmware, linked even when over budget."""
    from fltiny.build.firmware import build_firmware

    try:
        fw = build_firmware(board, bundle, out, ram_budget=budget)
        return fw.elf, True, ""
    except FltinyError as e:
        elf = out / ".pio" / "build" / board.name.replace("-", "_") / "firmware.elf"
        return (elf if elf.is_file() else None), False, str(e).splitlines()[0][:200]


def measure(model: str, board_name: str, budget: int | None = None) -> dict:
    from fltiny.build.project import budget_board
    from fltiny.export.bundle import read_bundle

    board = get_board(board_name)
    bundle = ensure_bundle(model)
    _m, head, backbone = read_bundle(bundle)
    row: dict = {"model": model, "board": board_name, "ram_budget": budget or board.ram_bytes,
                 "flash_budget": board.flash_bytes, "budget_build": budget is not None}
    if backbone is None:
        row["skipped"] = "no backbone (the whole model is the head): the device firmware needs one"
        return row
    tag = f"{board_name}-{model}" + (f"-{budget}" if budget else "")
    elf, fits, msg = device_elf(board, bundle, REPO / "build" / "bench" / "fw-device" / tag,
                                budget)
    row["firmware"] = "device"
    if msg:
        row["message"] = msg
    bench = None
    if elf is None:
        # the device firmware did not build (e.g. the device loop's checkpoint limit): measure the
        # benchmark firmware instead (backbone + training + delta state, no protocol buffers)
        try:
            bench = bench_firmware(board, bundle, REPO / "build" / "bench" / "fw" / f"{board_name}-{model}")
            elf, fits, row["firmware"] = bench.elf, True, "bench"
        except FltinyError as e:
            row["fits"] = False
            row["bench_message"] = str(e).splitlines()[0][:200]
            return row
    row["fits"] = fits
    mem = elf_memory(elf)
    row.update(flash=mem.flash, text_rodata=mem.text_rodata, data=mem.data, bss=mem.bss,
               static_ram=mem.static_ram, stack_reserve=mem.stack_reserve,
               ram_total=mem.static_ram + mem.stack_reserve, code=mem.code, const=mem.const,
               head_params=head.n_params, elf=str(elf.relative_to(REPO)))
    if row["firmware"] == "device":  # the build report's parts
        rboard = budget_board(board, budget) if budget else board
        row["parts"] = dict(memory_report(elf, rboard).parts)
    else:
        syms = symbol_bytes(elf, [s for _n, g in BENCH_GROUPS for s in g])
        row["parts"] = {n: sum(syms.get(s, 0) for s in g) for n, g in BENCH_GROUPS}
    if fits and budget is None:
        fw = bench or bench_firmware(board, bundle, REPO / "build" / "bench" / "fw" / f"{board_name}-{model}")
        row["arena"] = fw.project.arena_bytes
        try:
            run = run_bench(board, fw.elf, bench_blob(bundle, min(16, board.max_windows)))
            row["stack_hwm"] = run.stack_hwm
        except FltinyError as e:  # e.g. no data blob format for image windows (digits)
            row["stack_hwm_missing"] = str(e).splitlines()[0][:200]
    return row


def model_const_bytes(backbone: bytes) -> int:
    from fltiny.codegen import generate

    with tempfile.TemporaryDirectory() as tmp:
        return generate(backbone, Path(tmp), prefix="backbone").const_bytes


def kb(x) -> str:
    return "-" if x is None else f"{x / 1024:.1f}"


PART_COLUMNS = ("window store", "model state", "round buffers + rx message", "delta state",
                "FedDyn drift", "secure aggregation", "link buffers", "stack")


def board_label(r: dict) -> str:
    return r["board"] + (f" @{r['ram_budget'] // 1024}k" if r.get("budget_build") else "")


def parse_budgets(items: list[str]) -> list[tuple[str, int]]:
    out = []
    for item in items:
        board, _, size = item.partition("=")
        out.append((board, parse_ram_budget(size)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(ZOO))
    ap.add_argument("--boards", nargs="+", default=list(BOARDS))
    ap.add_argument("--budget", nargs="*", default=["qemu-m4f=32k"],
                    help="BOARD=SIZE: also build with fltiny build --ram-budget SIZE")
    ap.add_argument("--out", type=Path, default=RESULTS / "memory.json")
    args = ap.parse_args()
    budgets = parse_budgets(args.budget)
    rows = []
    for model in args.models:
        for b in args.boards:
            rows.append(measure(model, b))
            print(f"measured {model} {b}", file=sys.stderr)
        for b, size in budgets:
            rows.append(measure(model, b, size))
            print(f"measured {model} {b} --ram-budget {size}", file=sys.stderr)

    print("RAM and flash per model and board (kB = 1024 B; device firmware; stack HWM from the "
          "benchmark firmware; @32k: fltiny build --ram-budget 32k)")
    print("| model | board | firmware | flash | static RAM (.data+.bss) | stack HWM / reserve | "
          "RAM total / budget | fits |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['model']} | {board_label(r)} | - | - | - | - | - | {r['skipped']} |")
            continue
        if "flash" not in r:
            print(f"| {r['model']} | {board_label(r)} | - | - | - | - | - | "
                  f"no: {r.get('bench_message', r.get('message', ''))} |")
            continue
        hwm = f"{r['stack_hwm']:,} B" if "stack_hwm" in r else "-"
        print(f"| {r['model']} | {board_label(r)} | {r['firmware']} | {kb(r['flash'])} | "
              f"{kb(r['static_ram'])} | "
              f"{hwm} / {kb(r['stack_reserve'])} kB | {kb(r['ram_total'])} / {kb(r['ram_budget'])} | "
              f"{'yes' if r['fits'] else 'no'} |")

    print()
    print("RAM by part, Cortex-M4F (qemu-m4f) device link, bytes (fltiny build's report)")
    print("| model | board | " + " | ".join(PART_COLUMNS) + " | other | arena | code | const "
          "(model const) |")
    print("| --- " * (len(PART_COLUMNS) + 6) + "|")
    from fltiny.export.bundle import read_bundle

    for r in rows:
        if r["board"] != "qemu-m4f" or "flash" not in r:
            continue
        _m, _h, backbone = read_bundle(ensure_bundle(r["model"]))
        r["model_const"] = model_const_bytes(backbone)

        def num(value) -> str:
            return f"{value:,}" if isinstance(value, int) else "-"

        parts = r.get("parts", {})
        print(f"| {r['model']} | {board_label(r)} | "
              + " | ".join(num(parts.get(c)) for c in PART_COLUMNS)
              + f" | {num(parts.get('other'))} | {num(r.get('arena'))} | {num(r.get('code'))} | "
              f"{num(r.get('const'))} ({num(r.get('model_const'))}) |")

    verdicts = {}
    target = next((r for r in rows if r["model"] == "har-tiny" and r["board"] == "qemu-m4f"
                   and r.get("firmware") == "device" and not r.get("budget_build")), None)
    if target:
        # inference + training + delta state + link: the firmware without its window store
        ram = target["ram_total"] - target.get("parts", {}).get("window store", 0)
        ok = ram <= TARGET_RAM and target["flash"] <= TARGET_FLASH
        verdicts["64k"] = "PASS" if ok else "FAIL"
        print()
        print(f"target har-tiny on Cortex-M4 (qemu-m4f, {get_board('qemu-m4f').max_windows} "
              f"windows, default build less its window store): RAM {ram:,} B <= {TARGET_RAM:,} B, "
              f"flash {target['flash']:,} B <= {TARGET_FLASH:,} B -> {verdicts['64k']}")
    model, board, limit = BUDGET_TARGET
    target = next((r for r in rows if r["model"] == model and r["board"] == board
                   and r.get("budget_build") and r["ram_budget"] == limit and "flash" in r), None)
    if target:
        ok = target["fits"] and target["ram_total"] <= limit
        verdicts["32k"] = "PASS" if ok else "FAIL"
        print(f"target {model} device firmware on {board} in {limit:,} B (--ram-budget 32k): RAM "
              f"{target['ram_total']:,} B (static {target['static_ram']:,} + stack reserve "
              f"{target['stack_reserve']:,}) -> {verdicts['32k']}")
    meta = {"command": "bench/memory.py " + " ".join(sys.argv[1:]),
            "target": {"model": "har-tiny", "board": "qemu-m4f", "ram_max": TARGET_RAM,
                       "flash_max": TARGET_FLASH, "verdict": verdicts.get("64k"),
                       "budget_ram_max": limit, "budget_verdict": verdicts.get("32k")}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
