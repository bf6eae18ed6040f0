/* bare_mps2.c - bare.h for the QEMU mps2 boards (AN385 Cortex-M3, AN386 Cortex-M4F, AN500 M7):
 * vector table, reset (the boot step of firmware/ports/qemu-mps2/mps2_boot.h), polled CMSDK
 * UART0 output (DATA +0, STATE +4 bit0 TX full, CTRL +8 bit0 TX enable, BAUDDIV +0x10) and the
 * semihosting exit (mps2_boot.h). */
#include "bare.h"
#include "mps2_boot.h"

extern uint32_t _estack;

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x0u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x4u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x8u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

void Reset_Handler(void); /* the linker script's ENTRY */
void flt_bare_fault(void);

void flt_bare_write(const char *s)
{
    for (; *s != '\0'; ++s) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = (uint32_t)(uint8_t)*s;
    }
}

void flt_bare_write_u32(uint32_t v)
{
    char d[11];
    flt_bare_u32_digits(v, d);
    flt_bare_write(d);
}

void flt_bare_exit(int code)
{
    flt_mps2_semihost_exit(code);
}

void flt_bare_fault(void)
{
    flt_bare_write("bare: fault\n");
    flt_bare_exit(254);
}

void Reset_Handler(void)
{
    flt_mps2_boot_memory();
    UART_BAUDDIV = 16u;
    UART_CTRL = 0x1u;
    flt_bare_exit(flt_bare_main());
}

typedef void (*flt_bare_vector_t)(void);

/* Stack pointer, reset, then NMI .. UsageFault: a fault reports itself and exits 254. */
__attribute__((section(".isr_vector"), used))
const flt_bare_vector_t flt_bare_vectors[7] = {(flt_bare_vector_t)(uintptr_t)&_estack,
                                               Reset_Handler,
                                               flt_bare_fault,
                                               flt_bare_fault,
                                               flt_bare_fault,
                                               flt_bare_fault,
                                               flt_bare_fault};
