"""On-target cost and memory measured deterministically under QEMU (docs/benchmarks.md).

- `plugin`: builds tools/qemu-plugin/insn_count.c (a TCG plugin counting guest instructions
  between marker addresses) into build/qemu-plugin, cached.
- `ontarget`: builds the benchmark firmware (FLT_APP_BENCH, firmware/app/flt_benchmain.c), runs
  it under QEMU with the plugin and returns per-interval instruction counts and the stack
  high-water mark.
- `macs`: multiply-accumulate counts of the int8 backbone and of the head's training step.
"""
