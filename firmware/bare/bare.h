/* bare.h - the smallest program shell for running runtime C on the QEMU boards without the app,
 * a model or a port: on-target unit tests and micro-benchmarks (fltiny/bench/bare.py builds and
 * runs them).
 *
 * Contract
 * - The test program defines int flt_bare_main(void). The shell (bare_mps2.c for the mps2
 *   boards; bare_rv32.S + bare_rv32.c for riscv32 virt) starts the core, copies .data, zeroes
 *   .bss, enables the FPU where the build uses one, calls flt_bare_main and exits QEMU with its
 *   return value (semihosting SYS_EXIT_EXTENDED on Arm, the virt test finisher on RISC-V): 0 is
 *   success, any other value is the program's own failure code (1..255 portable).
 * - flt_bare_write(s) sends the NUL-terminated string s to UART0 (QEMU's serial port),
 *   busy-waiting; flt_bare_write_u32(v) writes v in decimal. No interrupts are enabled.
 * - The linker script is the board's own (templates/project/ld, mps2.ld.j2 or rv32.ld.j2): it
 * provides _sidata, _sdata, _edata, _sbss, _ebss and _estack, and the stack below _estack.
 * - Nothing here allocates; the shell has no static data but what its caller links in.
 */
#ifndef FLT_BARE_H
#define FLT_BARE_H

#include <stdint.h>

int flt_bare_main(void);
void flt_bare_write(const char *s);
void flt_bare_write_u32(uint32_t v);
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void flt_bare_exit(int code);

/* Shared by the shells: the decimal digits of v through flt_bare_write. */
static inline void flt_bare_u32_digits(uint32_t v, char out[11])
{
    char tmp[10];
    unsigned n = 0;
    do {
        tmp[n++] = (char)('0' + (char)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    for (unsigned i = 0; i < n; ++i) {
        out[i] = tmp[n - 1u - i];
    }
    out[n] = '\0';
}

#endif /* FLT_BARE_H */
