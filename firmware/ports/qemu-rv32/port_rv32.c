/* port_rv32.c - port.h for QEMU's riscv32 virt board (the ESP32-C3 stand-in).
 *
 * UART: ns16550a at 0x10000000 (RBR/THR +0, IER +1, LSR +5: bit0 data ready, bit5 THR empty),
 * its interrupt (PLIC source 10) enabled in the PLIC (0x0C000000) for hart 0 machine mode.
 * Timer: CLINT mtime (0x0200BFF8) at 10 MHz; mtimecmp (0x02004000) bounds each sleep.
 * Waiting: mstatus.MIE stays 0 and mie enables MEIE + MTIE, so `wfi` wakes when a byte arrives
 * or the timeout expires without a trap handler; the wakeup drains the UART into the ring
 * buffer and completes the PLIC claim (the "ISR" runs in thread context).
 * Exit: the virt test finisher (sifive_test at 0x100000): 0x5555 = pass, (code << 16) | 0x3333
 * = fail with that exit code (QEMU's exit status).
 * No persistent storage (see port.h); the data region at FLT_BOARD_DATA_ADDRESS, placed by
 * QEMU's `-device loader`, holds a data blob or a recording the sensor hook replays
 * (flt_recorded_sensor.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "flt_device.h"
#include "flt_ring.h"
#include "fltiny_config.h"
#include "port.h"
#include "rv32_boot.h"
#include "flt_linker_ram.h" /* flt_port_free_ram from the linker symbols */
#include "flt_no_storage.h" /* no persistent storage: the checkpoint functions */
#ifndef FLT_APP_SENSOR
#include "flt_recorded_sensor.h" /* the sensor hook: a recording in the data region */
#endif

#define UART0 0x10000000u
#define UART_RBR (*(volatile uint8_t *)(UART0 + 0u))
#define UART_THR (*(volatile uint8_t *)(UART0 + 0u))
#define UART_IER (*(volatile uint8_t *)(UART0 + 1u))
#define UART_FCR (*(volatile uint8_t *)(UART0 + 2u))
#define UART_LSR (*(volatile uint8_t *)(UART0 + 5u))
#define PLIC 0x0C000000u
#define PLIC_PRIORITY(n) (*(volatile uint32_t *)(PLIC + 4u * (n)))
#define PLIC_ENABLE0 (*(volatile uint32_t *)(PLIC + 0x2000u))
#define PLIC_THRESHOLD0 (*(volatile uint32_t *)(PLIC + 0x200000u))
#define PLIC_CLAIM0 (*(volatile uint32_t *)(PLIC + 0x200004u))
#define UART_IRQ 10u
#define MTIME_LO (*(volatile uint32_t *)0x0200BFF8u)
#define MTIME_HI (*(volatile uint32_t *)0x0200BFFCu)
#define MTIMECMP_LO (*(volatile uint32_t *)0x02004000u)
#define MTIMECMP_HI (*(volatile uint32_t *)0x02004004u)
#define TICKS_PER_MS 10000u

static flt_ring_t rx_ring;

static uint64_t mtime(void)
{
    uint32_t hi, lo;
    do {
        hi = MTIME_HI;
        lo = MTIME_LO;
    } while (hi != MTIME_HI);
    return ((uint64_t)hi << 32) | lo;
}

static void set_mtimecmp(uint64_t t)
{
    MTIMECMP_HI = 0xFFFFFFFFu; /* no spurious match while the halves change */
    MTIMECMP_LO = (uint32_t)t;
    MTIMECMP_HI = (uint32_t)(t >> 32);
}

static void drain_uart(void)
{
    while (UART_LSR & 0x1u) {
        (void)flt_ring_push(&rx_ring, UART_RBR);
    }
    uint32_t claim = PLIC_CLAIM0;
    if (claim != 0u) {
        PLIC_CLAIM0 = claim; /* complete */
    }
}

flt_status_t flt_port_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    UART_FCR = 0x07u; /* FIFO on, cleared */
    UART_IER = 0x01u; /* received data available */
    PLIC_PRIORITY(UART_IRQ) = 1u;
    PLIC_THRESHOLD0 = 0u;
    PLIC_ENABLE0 = 1u << UART_IRQ;
    set_mtimecmp(UINT64_MAX);
    uint32_t mie = (1u << 11) | (1u << 7);               /* MEIE | MTIE */
    __asm__ volatile("csrc mstatus, %0" ::"r"(1u << 3)); /* MIE off: wfi wakes, no trap */
    __asm__ volatile("csrs mie, %0" ::"r"(mie));
    return FLT_OK;
}

flt_status_t flt_port_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        while (!(UART_LSR & 0x20u)) {
        }
        UART_THR = buf[i];
    }
    return FLT_OK;
}

int flt_port_read_byte(uint8_t *byte)
{
    drain_uart();
    return flt_ring_pop(&rx_ring, byte);
}

void flt_port_wait_event(uint32_t timeout_ms)
{
    drain_uart();
    if (!flt_ring_empty(&rx_ring)) {
        return;
    }
    set_mtimecmp(mtime() + (uint64_t)timeout_ms * TICKS_PER_MS);
    __asm__ volatile("wfi" ::: "memory");
    set_mtimecmp(UINT64_MAX);
    drain_uart();
}

uint32_t flt_port_millis(void)
{
    return (uint32_t)(mtime() / TICKS_PER_MS);
}

const uint8_t *flt_port_data(size_t *len)
{
    *len = FLT_BOARD_DATA_MAX_BYTES;
    return (const uint8_t *)(uintptr_t)FLT_BOARD_DATA_ADDRESS;
}

void flt_port_exit(int code)
{
    flt_rv32_finish(code);
}

#include "flt_seeded_secret.h" /* flt_port_boot_secret: the launcher's seed */

uint32_t flt_port_rx_dropped(void)
{
    return rx_ring.dropped;
}

void flt_rv32_reset(void)
{
    flt_rv32_boot_memory();
    flt_port_exit(flt_app_main(0, NULL));
}
