/* startup_mps2.c - reset handler and vector table of the QEMU mps2 boards (AN385 Cortex-M3,
 * AN386 Cortex-M4F, AN500 Cortex-M7).
 *
 * Contract
 * - The linker script (templates/project/ld/mps2.ld.j2, rendered with the board's flash and
 *   RAM sizes) provides _sidata/_sdata/_edata (initialised data: load address in flash, run
 *   address in RAM), _sbss/_ebss and _estack. Reset_Handler copies .data, zeroes .bss, enables
 *   the FPU when the build uses one (CPACR: CP10/CP11 full access, then dsb/isb, before any
 *   float instruction) and calls main(); if main returns it exits through flt_port_exit.
 * - Unused exceptions go to Default_Handler, which spins (a debugger or QEMU's -d int shows
 *   where). The UART0 RX interrupt (IRQ 0 on the mps2 boards) and SysTick are defined by
 *   port_mps2.c.
 */
#include <stdint.h>

#include "port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void flt_mps2_uart0_rx_irq(void);

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
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
    flt_port_exit(main());
}

typedef void (*flt_vector_t)(void);

#define FLT_MPS2_IRQS 32

/* The initial stack pointer is the first entry of the table: an address, stored as a vector. */
__attribute__((section(".isr_vector"), used)) const flt_vector_t flt_vectors[16 + FLT_MPS2_IRQS] = {
    (flt_vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0,
    0,
    0,
    0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    flt_mps2_uart0_rx_irq, /* IRQ 0: UART0 RX */
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
};
