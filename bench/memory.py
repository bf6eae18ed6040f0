"""RAM and flash per zoo model and board, from the linked ELF plus a measured stack high-water.

    .venv/bin/python bench/memory.py [--models har-tiny ...] [--boards qemu-m4f ...]

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
Per model, from the Cortex-M4F (qemu-m4f) device link: the backbone's activation arena, the
head + optimizer state (global and local parameters, momentum, training workspace), the delta
state (error-feedback residuals, top-k indices/values/scales, the DELTA message buffer), the
feature buffer (max_windows dequantized backbone outputs), code bytes (function symbols) and
const bytes (read-only objects; `model const` = the generated backbone's weights and
multipliers). Then checks the target: har-tiny inference + head training + delta state in at
most 64 kB RAM and 128 kB flash on Cortex-M4. Writes bench/results/memory.json.
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
from fltiny.errors import FltinyError  # noqa: E402
from fltiny.models.zoo import ZOO  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TARGET_RAM, TARGET_FLASH = 64 * 1024, 128 * 1024

# static buffers of firmware/app/flt_device.c, grouped
HEAD_STATE = ("global_params", "ws_params", "ws_velocity", "ws_work")
DELTA_STATE = ("residual", "residual_next", "ws_indices", "ws_values", "ws_scales", "delta_buf")
FEATURES = ("ws_features", "ws_feat_q", "ws_order")
# the same buffers in firmware/app/flt_benchmain.c
BENCH_GROUPS = (("b_global", "b_params", "b_velocity", "b_work"),
                ("b_residual", "b_indices", "b_values", "b_scales", "b_payload"),
                ("b_features", "b_feat_q", "b_order"))


def device_elf(board, bundle: Path, out: Path) -> tuple[Path | None, bool, str]:
    """(ELF, fits, message): the device firmware, linked even when over budget."""
    from fltiny.build.firmware import build_firmware

    try:
        fw = build_firmware(board, bundle, out)
        return fw.elf, True, ""
    except FltinyError as e:
        elf = out / ".pio" / "build" / board.name.replace("-", "_") / "firmware.elf"
        return (elf if elf.is_file() else None), False, str(e).splitlines()[0][:200]


def measure(model: str, board_name: str) -> dict:
    from fltiny.export.bundle import read_bundle

    board = get_board(board_name)
    bundle = ensure_bundle(model)
    _m, head, backbone = read_bundle(bundle)
    row: dict = {"model": model, "board": board_name, "ram_budget": board.ram_bytes,
                 "flash_budget": board.flash_bytes}
    if backbone is None:
        row["skipped"] = "no backbone (the whole model is the head): the device firmware needs one"
        return row
    elf, fits, msg = device_elf(board, bundle,
                                REPO / "build" / "bench" / "fw-device" / f"{board_name}-{model}")
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
    groups = (HEAD_STATE, DELTA_STATE, FEATURES) if row["firmware"] == "device" else BENCH_GROUPS
    syms = symbol_bytes(elf, [s for g in groups for s in g])
    row["head_optimizer_state"] = sum(syms.get(s, 0) for s in groups[0])
    row["delta_state"] = sum(syms.get(s, 0) for s in groups[1])
    row["feature_buffer"] = sum(syms.get(s, 0) for s in groups[2])
    row["missing_symbols"] = sorted({s for g in groups for s in g} - set(syms))
    if fits:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(ZOO))
    ap.add_argument("--boards", nargs="+", default=list(BOARDS))
    ap.add_argument("--out", type=Path, default=RESULTS / "memory.json")
    args = ap.parse_args()
    rows = []
    for model in args.models:
        for b in args.boards:
            rows.append(measure(model, b))
            print(f"measured {model} {b}", file=sys.stderr)

    print("RAM and flash per model and board (kB = 1024 B; device firmware; stack HWM from the "
          "benchmark firmware)")
    print("| model | board | firmware | flash | static RAM (.data+.bss) | stack HWM / reserve | "
          "RAM total / budget | fits |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['model']} | {r['board']} | - | - | - | - | - | {r['skipped']} |")
            continue
        if "flash" not in r:
            print(f"| {r['model']} | {r['board']} | - | - | - | - | - | no: {r.get('bench_message', '')} |")
            continue
        hwm = f"{r['stack_hwm']:,} B" if "stack_hwm" in r else "-"
        print(f"| {r['model']} | {r['board']} | {r['firmware']} | {kb(r['flash'])} | "
              f"{kb(r['static_ram'])} | "
              f"{hwm} / {kb(r['stack_reserve'])} kB | {kb(r['ram_total'])} / {kb(r['ram_budget'])} | "
              f"{'yes' if r['fits'] else 'no'} |")

    print()
    print("Per model, Cortex-M4F (qemu-m4f) device link, bytes")
    print("| model | firmware | arena | head + optimizer state | delta state | feature buffer | code | const "
          "(model const) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    from fltiny.export.bundle import read_bundle

    for r in rows:
        if r["board"] != "qemu-m4f" or "flash" not in r:
            continue
        _m, _h, backbone = read_bundle(ensure_bundle(r["model"]))
        r["model_const"] = model_const_bytes(backbone)
        def num(key: str, r: dict = r) -> str:
            value = r.get(key)
            return f"{value:,}" if isinstance(value, int) else "-"

        print(f"| {r['model']} | {r['firmware']} | {num('arena')} | "
              f"{num('head_optimizer_state')} | {num('delta_state')} | {num('feature_buffer')} | "
              f"{num('code')} | {num('const')} ({num('model_const')}) |")

    target = next((r for r in rows if r["model"] == "har-tiny" and r["board"] == "qemu-m4f"
                   and r.get("firmware") == "device"), None)
    verdict = None
    if target:
        ram_ok = target["ram_total"] <= TARGET_RAM
        flash_ok = target["flash"] <= TARGET_FLASH
        verdict = "PASS" if ram_ok and flash_ok else "FAIL"
        print()
        print(f"target har-tiny on Cortex-M4 (qemu-m4f, {get_board('qemu-m4f').max_windows} windows): "
              f"RAM {target['ram_total']:,} B (static {target['static_ram']:,} + stack reserve "
              f"{target['stack_reserve']:,}; measured stack HWM {target.get('stack_hwm', '-')}) "
              f"<= {TARGET_RAM:,} B: {'ok' if ram_ok else 'over'}; flash {target['flash']:,} B "
              f"<= {TARGET_FLASH:,} B: {'ok' if flash_ok else 'over'} -> {verdict}")
    meta = {"command": "bench/memory.py " + " ".join(sys.argv[1:]),
            "target": {"model": "har-tiny", "board": "qemu-m4f", "ram_max": TARGET_RAM,
                       "flash_max": TARGET_FLASH, "verdict": verdict}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
