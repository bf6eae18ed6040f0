/* mps2_boot.h - the boot step and the exit every program on the QEMU mps2 boards (AN385
 * Cortex-M3, AN386 Cortex-M4F, AN500 Cortex-M7) shares: the device firmware (startup_mps2.c,
 * port_mps2.c) and the bare programs (firmware/bare/bare_mps2.c).
 *
 * Contract
 * - flt_mps2_boot_memory(): copies initialised data from its load address in flash (_sidata)
 *   to RAM (_sdata .. _edata), zeroes .bss (_sbss .. _ebss), and, when the build uses the FPU
 *   (__ARM_FP), gives CP10/CP11 full access (CPACR, then dsb/isb) before any float
 *   instruction. The symbols come from the linker script (templates/project/ld/mps2.ld.j2).
 *   Call it first in Reset_Handler, before anything reads a global.
 * - flt_mps2_semihost_exit(code): semihosting SYS_EXIT_EXTENDED (0x20) with
 *   {ADP_Stopped_ApplicationExit, code}: QEMU (-semihosting-config enable=on) exits with
 *   code. Never returns (waits for interrupts if the call is not served).
 */
#ifndef FLT_MPS2_BOOT_H
#define FLT_MPS2_BOOT_H

#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

static inline void flt_mps2_boot_memory(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0u;
    }
#if defined(__ARM_FP)
    {
        volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
        *cpacr |= (0xFu << 20);
        __asm__ volatile("dsb\n\tisb" ::: "memory");
    }
#endif
}

__attribute__((noreturn)) static inline void flt_mps2_semihost_exit(int code)
{
    volatile uint32_t block[2];
    block[0] = 0x20026u; /* ADP_Stopped_ApplicationExit */
    block[1] = (uint32_t)code;
    register uint32_t r0 __asm__("r0") = 0x20u;
    register uint32_t r1 __asm__("r1") = (uint32_t)(uintptr_t)block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

#endif /* FLT_MPS2_BOOT_H */
