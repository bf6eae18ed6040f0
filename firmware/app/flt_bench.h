/* flt_bench.h - marker functions that delimit measured code for the instruction-count plugin
 * (tools/qemu-plugin/insn_count.c) and stack painting for the stack high-water mark.
 *
 * Contract
 * - flt_bench_begin(id) / flt_bench_end(id), id < FLT_BENCH_MAX_IDS, bracket one measured
 *   interval. Each id has its own pair of out-of-line marker functions (flt_bench_b<id>,
 *   flt_bench_e<id>: distinct bodies, so the linker cannot fold them) whose addresses the host
 *   reads from the ELF and hands to the plugin. The plugin counts the instructions executed from
 *   the first instruction of flt_bench_b<id> to the first of flt_bench_e<id>: the interval
 *   includes a constant overhead (the marker's return and the dispatch in flt_bench_end), which
 *   an empty interval (FLT_BENCH_CALIBRATE: begin then end) measures so the host can subtract
 *   it. An id >= FLT_BENCH_MAX_IDS is ignored. Intervals of different ids may nest; the same
 *   id must not.
 * - The markers have no effect on program state besides one volatile word; without the plugin
 *   they cost a few instructions each.
 * - flt_bench_stack_paint() fills the unused RAM between the end of .bss (_ebss) and the
 *   current stack pointer (minus a small margin) with FLT_BENCH_STACK_PATTERN; call it first
 *   thing, before any interrupt is enabled. flt_bench_stack_high_water() returns the deepest
 *   stack use since then, in bytes below _estack (the first word above _ebss that lost the
 *   pattern), or 0 when nothing was painted. Both need the linker symbols _ebss and _estack
 *   (the QEMU linker scripts define them).
 */
#ifndef FLT_BENCH_H
#define FLT_BENCH_H

#include <stdint.h>

#define FLT_BENCH_MAX_IDS 8u
#define FLT_BENCH_STACK_PATTERN 0xA5C3A5C3u

/* ids of the benchmark firmware (flt_benchmain.c); the host (fltiny.bench) uses the same */
#define FLT_BENCH_CALIBRATE 0u /* empty interval: the marker overhead */
#define FLT_BENCH_INFER 1u     /* one backbone inference */
#define FLT_BENCH_FEATURES 2u  /* backbone + dequantization over the n training windows */
#define FLT_BENCH_TRAIN 3u     /* flt_train_epochs: one epoch over n samples */
#define FLT_BENCH_DELTA 4u     /* flt_delta_compress + flt_payload_encode */
#define FLT_BENCH_ROUND 5u     /* flt_round_run over n windows */

void flt_bench_begin(uint32_t id);
void flt_bench_end(uint32_t id);

void flt_bench_stack_paint(void);
uint32_t flt_bench_stack_high_water(void);

#endif /* FLT_BENCH_H */
