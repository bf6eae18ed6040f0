/* port_mps2.c - port.h for the QEMU mps2 boards: CMSDK APB UART0 with an RX interrupt feeding
 * a ring buffer, SysTick at 100 Hz for flt_port_millis, wfi between events, semihosting exit.
 *
 * Registers (CMSDK APB UART at 0x40004000): DATA +0, STATE +4 (bit0 TX full, bit1 RX full),
 * CTRL +8 (bit0 TX enable, bit1 RX enable, bit3 RX interrupt enable), INTSTATUS/INTCLEAR +0xC
 * (bit1 RX), BAUDDIV +0x10. NVIC ISER0 0xE000E100; SysTick 0xE000E010.
 * No persistent storage: the checkpoint functions report FLT_ERR_STATE / UNSUPPORTED and a
 * reset restarts cleanly (the host resyncs with a full GLOBAL). The data region at
 * FLT_BOARD_DATA_ADDRESS, placed there by QEMU's `-device loader` (docs/boards.md), holds a
 * data blob or a recording that the sensor hook replays (flt_recorded_sensor.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "flt_ring.h"
#include "fltiny_config.h"
#include "mps2_boot.h"
#include "port.h"
#include "flt_linker_ram.h" /* flt_port_free_ram from the linker symbols */
#include "flt_no_storage.h" /* no persistent storage: the checkpoint functions */
#ifndef FLT_APP_SENSOR
#include "flt_recorded_sensor.h" /* the sensor hook: a recording in the data region */
#endif

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x0u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x4u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x8u))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0xCu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define TICK_MS 10u

static flt_ring_t rx_ring;
static volatile uint32_t ticks;

void SysTick_Handler(void);
void flt_mps2_uart0_rx_irq(void);

void SysTick_Handler(void)
{
    ticks = ticks + 1u;
}

void flt_mps2_uart0_rx_irq(void)
{
    while (UART_STATE & 0x2u) {
        (void)flt_ring_push(&rx_ring, (uint8_t)(UART_DATA & 0xFFu));
    }
    UART_INTCLEAR = 0x2u;
}

flt_status_t flt_port_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    UART_BAUDDIV = 16u;
    UART_CTRL = 0x1u | 0x2u | 0x8u;
    NVIC_ISER0 = 1u << 0; /* UART0 RX */
    SYST_RVR = (uint32_t)(FLT_BOARD_CLOCK_HZ / (1000u / TICK_MS)) - 1u;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u; /* processor clock, interrupt, enable */
    __asm__ volatile("cpsie i" ::: "memory");
    return FLT_OK;
}

flt_status_t flt_port_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = buf[i];
    }
    return FLT_OK;
}

int flt_port_read_byte(uint8_t *byte)
{
    if (flt_ring_empty(&rx_ring) && (UART_STATE & 0x2u)) {
        /* a byte the interrupt has not taken yet (or a board whose UART RX line is wired to
         * another IRQ): drain it here with interrupts masked, then the SysTick tick bounds
         * the latency of such a board to TICK_MS */
        __asm__ volatile("cpsid i" ::: "memory");
        flt_mps2_uart0_rx_irq();
        __asm__ volatile("cpsie i" ::: "memory");
    }
    return flt_ring_pop(&rx_ring, byte);
}

void flt_port_wait_event(uint32_t timeout_ms)
{
    uint32_t start = flt_port_millis();
    /* Sleep with interrupts masked so a byte arriving between the check and wfi still wakes
     * us (a pending interrupt ends wfi even when PRIMASK is set), then let the ISR run. */
    for (;;) {
        __asm__ volatile("cpsid i" ::: "memory");
        if (!flt_ring_empty(&rx_ring)) {
            __asm__ volatile("cpsie i" ::: "memory");
            return;
        }
        __asm__ volatile("wfi" ::: "memory");
        __asm__ volatile("cpsie i" ::: "memory");
        if (!flt_ring_empty(&rx_ring) || (uint32_t)(flt_port_millis() - start) >= timeout_ms) {
            return;
        }
    }
}

uint32_t flt_port_millis(void)
{
    return ticks * TICK_MS;
}

const uint8_t *flt_port_data(size_t *len)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)FLT_BOARD_DATA_ADDRESS;
    *len = FLT_BOARD_DATA_MAX_BYTES;
    return p;
}

void flt_port_exit(int code)
{
    flt_mps2_semihost_exit(code);
}

#include "flt_seeded_secret.h" /* flt_port_boot_secret: the launcher's seed */

uint32_t flt_port_rx_dropped(void)
{
    return rx_ring.dropped;
}

#include "flt_device.h"

int main(void)
{
    return flt_app_main(0, NULL);
}
