/* short_read_test.c - flt_short_read (firmware/ports/common/flt_short_read.h) against a model of
 * ESP-IDF's UART driver on a virtual clock: uart_read_bytes(len, timeout) returns when len bytes
 * have arrived or the timeout has passed; uart_get_buffered_data_len says what has arrived.
 * Prints one line per case and exits non-zero on the first mismatch (tests/test_port_serial.py).
 */
#include <stdio.h>
#include <string.h>

#include "flt_short_read.h"

#define MAX_BYTES 600

typedef struct {
    uint32_t at[MAX_BYTES]; /* arrival time (ms) of each byte the host sends */
    size_t n;               /* bytes scheduled */
    size_t taken;           /* bytes the reader has consumed */
    uint32_t now;           /* virtual ms */
} fake_uart_t;

static size_t arrived(const fake_uart_t *u)
{
    size_t k = 0;
    while (k < u->n && u->at[k] <= u->now) {
        ++k;
    }
    return k;
}

static size_t fake_avail(void *ctx)
{
    fake_uart_t *u = (fake_uart_t *)ctx;
    return arrived(u) - u->taken;
}

/* uart_read_bytes: waits until len bytes are buffered or timeout_ms has passed */
static int fake_read(void *ctx, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    fake_uart_t *u = (fake_uart_t *)ctx;
    uint32_t deadline = u->now + timeout_ms;
    while (arrived(u) - u->taken < len && u->now < deadline) {
        u->now++;
    }
    size_t got = arrived(u) - u->taken;
    if (got > len) {
        got = len;
    }
    for (size_t i = 0; i < got; ++i) {
        buf[i] = (uint8_t)(u->taken + i);
    }
    u->taken += got;
    return (int)got;
}

static int failures;

static void expect(const char *name, size_t got, size_t want_n, uint32_t now, uint32_t want_now)
{
    int ok = got == want_n && now == want_now;
    printf("%s %s: %zu bytes at t=%u ms (want %zu at %u)\n", ok ? "ok" : "FAIL", name, got,
           (unsigned)now, want_n, (unsigned)want_now);
    failures += !ok;
}

static flt_ring_t ring;
static uint8_t scratch[256];

static size_t run(fake_uart_t *u, uint32_t timeout_ms)
{
    return flt_short_read(&ring, scratch, sizeof scratch, fake_avail, fake_read, u, timeout_ms);
}

int main(void)
{
    static fake_uart_t u;
    uint8_t b;
    size_t got;

    /* a 20-byte frame already buffered: taken at once, no wait */
    memset(&u, 0, sizeof u);
    u.n = 20;
    got = run(&u, 1000);
    expect("buffered frame", got, 20, u.now, 0);
    for (uint8_t i = 0; i < 20; ++i) {
        if (!flt_ring_pop(&ring, &b) || b != i) {
            printf("FAIL ring order at %u\n", (unsigned)i);
            failures++;
        }
    }

    /* nothing yet, a 12-byte frame arrives at t=30 ms (1 byte per ms): returns at the first */
    memset(&u, 0, sizeof u);
    for (size_t i = 0; i < 12; ++i) {
        u.at[i] = 30u + (uint32_t)i;
    }
    u.n = 12;
    got = run(&u, 1000);
    expect("frame arriving", got, 1, u.now, 30);
    u.now = 50; /* later: the rest is buffered and taken without waiting */
    got = run(&u, 1000);
    expect("rest of the frame", got, 11, u.now, 50);

    /* nothing arrives: the full timeout, no bytes */
    memset(&u, 0, sizeof u);
    got = run(&u, 100);
    expect("silence", got, 0, u.now, 100);
    got = run(&u, 0);
    expect("poll", got, 0, u.now, 100);

    /* more than the scratch buffer: at most cap per call, the rest stays in the driver */
    memset(&u, 0, sizeof u);
    u.n = 300;
    got = run(&u, 10);
    expect("over cap", got, 256, u.now, 0);
    got = run(&u, 10);
    expect("remainder", got, 44, u.now, 0);

    return failures ? 1 : 0;
}
