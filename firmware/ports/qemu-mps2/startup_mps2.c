/* startup_mps2.c - reset handler and vector table of the QEMU mps2 boards (AN385 Cortex-M3,
 * AN386 Cortex-M4F, AN500 Cortex-M7).
 *
 * Contract
 * - The linker script (templates/project/ld/mps2.ld.j2, rendered with the board's flash and
 *   RAM sizes) provides _estack and the data / bss symbols of mps2_boot.h. Reset_Handler runs
 *   flt_mps2_boot_memory (.data, .bss, the FPU) and calls main(); if main returns it exits
 *   through flt_port_exit.
 * - Unused exceptions go to Default_Handler, which spins (a debugger or QEMU's -d int shows
 *   where). The UART0 RX interrupt (IRQ 0 on the mps2 boards) and SysTick are defined by
 *   port_mps2.c.
 */
#include <stdint.h>

#include "mps2_boot.h"
#include "port.h"

extern uint32_t _estack;
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
    flt_mps2_boot_memory();
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
