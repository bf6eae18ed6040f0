/* flt_bench.c - see flt_bench.h. The markers are compiled only into benchmark firmware
 * (FLT_APP_BENCH); stack painting also into device firmware that reports its stack use
 * (FLT_APP_STACK_WATCH, the QEMU boards: flt_device.h STATUS). */
#if defined(FLT_APP_BENCH) || defined(FLT_APP_STACK_WATCH)

#include "flt_bench.h"

#include <stdint.h>

#if defined(__GNUC__)
#define FLT_BENCH_MARKER __attribute__((noinline, used))
#else
#define FLT_BENCH_MARKER
#endif
#endif

#ifdef FLT_APP_BENCH

/* Each marker stores a different constant: distinct bodies, so identical-code folding (GCC's
 * -fipa-icf, the linker's ICF) cannot give two markers the same address. */
static volatile uint32_t flt_bench_last;

#define FLT_BENCH_PAIR(n)                       \
    FLT_BENCH_MARKER void flt_bench_b##n(void); \
    FLT_BENCH_MARKER void flt_bench_e##n(void); \
    FLT_BENCH_MARKER void flt_bench_b##n(void)  \
    {                                           \
        flt_bench_last = 0x100u + (n);          \
    }                                           \
    FLT_BENCH_MARKER void flt_bench_e##n(void)  \
    {                                           \
        flt_bench_last = 0x200u + (n);          \
    }

FLT_BENCH_PAIR(0)
FLT_BENCH_PAIR(1)
FLT_BENCH_PAIR(2)
FLT_BENCH_PAIR(3)
FLT_BENCH_PAIR(4)
FLT_BENCH_PAIR(5)
FLT_BENCH_PAIR(6)
FLT_BENCH_PAIR(7)

typedef void (*flt_bench_fn_t)(void);

static flt_bench_fn_t const flt_bench_begins[FLT_BENCH_MAX_IDS] = {
    flt_bench_b0, flt_bench_b1, flt_bench_b2, flt_bench_b3,
    flt_bench_b4, flt_bench_b5, flt_bench_b6, flt_bench_b7};
static flt_bench_fn_t const flt_bench_ends[FLT_BENCH_MAX_IDS] = {
    flt_bench_e0, flt_bench_e1, flt_bench_e2, flt_bench_e3,
    flt_bench_e4, flt_bench_e5, flt_bench_e6, flt_bench_e7};

FLT_BENCH_MARKER void flt_bench_begin(uint32_t id)
{
    if (id < FLT_BENCH_MAX_IDS) {
        flt_bench_begins[id]();
    }
}

FLT_BENCH_MARKER void flt_bench_end(uint32_t id)
{
    if (id < FLT_BENCH_MAX_IDS) {
        flt_bench_ends[id]();
    }
}

#endif /* FLT_APP_BENCH */

#if defined(FLT_APP_BENCH) || defined(FLT_APP_STACK_WATCH)
/* ---- stack painting ----------------------------------------------------------------------- */
extern uint32_t _ebss, _estack;

#define FLT_BENCH_MARGIN_WORDS 16u /* left unpainted below the painter's own stack pointer */

static uintptr_t stack_pointer(void)
{
    uintptr_t sp;
#if defined(__arm__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#elif defined(__riscv)
    __asm__ volatile("mv %0, sp" : "=r"(sp));
#else
    volatile uint32_t here = 0u;
    sp = (uintptr_t)&here;
#endif
    return sp;
}

static volatile uint32_t *painted_low;

FLT_BENCH_MARKER void flt_bench_stack_paint(void)
{
    uintptr_t low = ((uintptr_t)&_ebss + 3u) & ~(uintptr_t)3u;
    uintptr_t high = (stack_pointer() & ~(uintptr_t)3u) - 4u * FLT_BENCH_MARGIN_WORDS;
    /* volatile stores: the compiler must not turn the loop into a memset call (whose own
     * frame would sit below the stack pointer, in the region being painted) */
    for (volatile uint32_t *p = (volatile uint32_t *)low; (uintptr_t)p < high; ++p) {
        *p = FLT_BENCH_STACK_PATTERN;
    }
    painted_low = (volatile uint32_t *)low;
}

uint32_t flt_bench_stack_high_water(void)
{
    if (painted_low == 0) {
        return 0u;
    }
    volatile uint32_t *p = painted_low;
    uintptr_t top = (uintptr_t)&_estack;
    while ((uintptr_t)p < top && *p == FLT_BENCH_STACK_PATTERN) {
        ++p;
    }
    return (uint32_t)(top - (uintptr_t)p);
}

#else
/* ISO C forbids an empty translation unit */
typedef int flt_bench_unused_t;
#endif /* FLT_APP_BENCH || FLT_APP_STACK_WATCH */
