/* bare_mps2.c - bare.h for the QEMU mps2 boards (AN385 Cortex-M3, AN386 Cortex-M4F, AN500 M7):
 * vector table, reset, polled CMSDK UART0 output (DATA +0, STATE +4 bit0 TX full, CTRL +8 bit0
 * TX enable, BAUDDIV +0x10) and the semihosting exit. */
#include "bare.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

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
    /* Semihosting SYS_EXIT_EXTENDED (0x20): {ADP_Stopped_ApplicationExit, code}. */
    volatile uint32_t block[2];
    block[0] = 0x20026u;
    block[1] = (uint32_t)code;
    register uint32_t r0 __asm__("r0") = 0x20u;
    register uint32_t r1 __asm__("r1") = (uint32_t)(uintptr_t)block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

void flt_bare_fault(void)
{
    flt_bare_write("bare: fault\n");
    flt_bare_exit(254);
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
