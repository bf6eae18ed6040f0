/* bare_rv32.c - bare.h for QEMU riscv32 virt (-bios none): reset (called by bare_rv32.S),
 * polled ns16550a UART output (THR +0, LSR +5 bit5 THR empty) and the sifive_test finisher
 * (0x5555 = pass, (code << 16) | 0x3333 = fail with that exit code). */
#include "bare.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

#define UART0 0x10000000u
#define UART_THR (*(volatile uint8_t *)(UART0 + 0u))
#define UART_LSR (*(volatile uint8_t *)(UART0 + 5u))
#define FINISHER (*(volatile uint32_t *)0x00100000u)

void flt_bare_reset(void);

void flt_bare_write(const char *s)
{
    for (; *s != '\0'; ++s) {
        while ((UART_LSR & 0x20u) == 0u) {
        }
        UART_THR = (uint8_t)*s;
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
    FINISHER = code == 0 ? 0x5555u : (((uint32_t)code & 0xFFFFu) << 16) | 0x3333u;
    for (;;) {
    }
}

void flt_bare_reset(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0u;
    }
    flt_bare_exit(flt_bare_main());
}
