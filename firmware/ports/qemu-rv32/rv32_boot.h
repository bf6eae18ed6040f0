/* rv32_boot.h - the boot step and the exit every program on QEMU riscv32 virt (-bios none)
 * shares: the device firmware (start_rv32.S, port_rv32.c) and the bare programs
 * (firmware/bare/bare_rv32.c, entered through the same start_rv32.S).
 *
 * Contract
 * - start_rv32.S sets the global pointer and the stack, then calls flt_rv32_reset(), which the
 *   program defines (port_rv32.c: the device loop; bare_rv32.c: flt_bare_main) and which
 *   calls flt_rv32_boot_memory() first.
 * - flt_rv32_boot_memory(): copies initialised data from its load address (_sidata) to RAM
 *   (_sdata .. _edata) and zeroes .bss (_sbss .. _ebss); symbols from the linker script.
 * - flt_rv32_finish(code): the sifive_test finisher at 0x100000: 0x5555 (pass) for code 0,
 *   else (code << 16) | 0x3333 (QEMU exits with that code). Never returns.
 */
#ifndef FLT_RV32_BOOT_H
#define FLT_RV32_BOOT_H

#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

void flt_rv32_reset(void);

static inline void flt_rv32_boot_memory(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0u;
    }
}

__attribute__((noreturn)) static inline void flt_rv32_finish(int code)
{
    *(volatile uint32_t *)0x00100000u =
        code == 0 ? 0x5555u : (((uint32_t)code & 0xFFFFu) << 16) | 0x3333u;
    for (;;) {
        __asm__ volatile("wfi");
    }
}

#endif /* FLT_RV32_BOOT_H */
