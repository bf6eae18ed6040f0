/* flt_short_read.h - move what a blocking receive driver holds into a port's RX ring without
 * waiting for bytes that have not arrived.
 *
 * Contract
 * - The driver is described by two functions: rx_avail(ctx) returns how many received bytes it
 *   holds (rx_read can return them at once); rx_read(ctx, buf, len, timeout_ms) returns when
 *   len bytes have arrived or timeout_ms has passed, with the count read (<= 0: none or error).
 *   That is ESP-IDF's uart_get_buffered_data_len / uart_read_bytes.
 * - flt_short_read asks rx_read only for what rx_avail reports. When nothing is held, it waits up
 *   to timeout_ms for ONE byte, then takes what else has arrived meanwhile without waiting. So
 *   it returns as soon as any byte is there: a 20-byte host frame costs no timeout, where asking
 *   for a whole buffer waits for the buffer to fill or the full timeout.
 * - Moves at most cap bytes (the scratch buffer, owned by the caller) per call; bytes the ring
 *   cannot take are counted as dropped by flt_ring_push. Returns the count moved (0: none).
 *   Never allocates; no state is kept between calls. (The parameters are not called read/avail:
 *   lwIP may define read() as a macro, and -Wshadow flags a pointer named after a function.)
 */
#ifndef FLT_SHORT_READ_H
#define FLT_SHORT_READ_H

#include <stddef.h>
#include <stdint.h>

#include "flt_ring.h"

typedef size_t (*flt_avail_fn)(void *ctx);
typedef int (*flt_read_fn)(void *ctx, uint8_t *buf, size_t len, uint32_t timeout_ms);

static inline size_t flt_short_read(flt_ring_t *ring, uint8_t *scratch, size_t cap,
                                    flt_avail_fn rx_avail, flt_read_fn rx_read, void *ctx,
                                    uint32_t timeout_ms)
{
    size_t want = rx_avail(ctx);
    size_t got = 0u;
    if (cap == 0u) {
        return 0u;
    }
    if (want == 0u) {
        if (timeout_ms == 0u || rx_read(ctx, scratch, 1u, timeout_ms) != 1) {
            return 0u;
        }
        got = 1u;
        want = rx_avail(ctx);
    }
    if (want > cap - got) {
        want = cap - got;
    }
    if (want > 0u) {
        int n = rx_read(ctx, scratch + got, want, 0u);
        if (n > 0) {
            got += (size_t)n;
        }
    }
    for (size_t i = 0; i < got; ++i) {
        (void)flt_ring_push(ring, scratch[i]);
    }
    return got;
}

#endif /* FLT_SHORT_READ_H */
