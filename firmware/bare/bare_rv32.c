/* bare_rv32.c - bare.h for QEMU riscv32 virt (-bios none): flt_rv32_reset (entered from the
 * device firmware's own firmware/ports/qemu-rv32/start_rv32.S; the boot step and the
 * sifive_test finisher of rv32_boot.h) and polled ns16550a UART output (THR +0, LSR +5 bit5
 * THR empty). */
#include "bare.h"
#include "rv32_boot.h"

#define UART0 0x10000000u
#define UART_THR (*(volatile uint8_t *)(UART0 + 0u))
#define UART_LSR (*(volatile uint8_t *)(UART0 + 5u))

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
    flt_rv32_finish(code);
}

void flt_rv32_reset(void)
{
    flt_rv32_boot_memory();
    flt_bare_exit(flt_bare_main());
}
