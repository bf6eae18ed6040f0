/* flt_ring.h - single-producer single-consumer byte ring between an RX interrupt (producer)
 * and the main loop (consumer).
 *
 * Contract
 * - FLT_RING_SIZE is a power of two (default 1024); one slot stays empty, so the ring holds
 *   FLT_RING_SIZE - 1 bytes. flt_ring_push returns 0 and counts a drop when full.
 * - Safe without locks for one producer and one consumer on a single core: head is written
 *   only by the producer, tail only by the consumer, each through a volatile index, and a
 *   byte is stored before head moves past it. No allocation; the caller owns the struct.
 */
#ifndef FLT_RING_H
#define FLT_RING_H

#include <stdint.h>

#ifndef FLT_RING_SIZE
#define FLT_RING_SIZE 1024u
#endif
#if (FLT_RING_SIZE & (FLT_RING_SIZE - 1u)) != 0u || FLT_RING_SIZE < 2u
#error "FLT_RING_SIZE must be a power of two >= 2"
#endif

typedef struct {
    uint8_t buf[FLT_RING_SIZE];
    volatile uint32_t head; /* next write (producer) */
    volatile uint32_t tail; /* next read (consumer) */
    volatile uint32_t dropped;
} flt_ring_t;

static inline int flt_ring_push(flt_ring_t *r, uint8_t b)
{
    uint32_t h = r->head;
    uint32_t next = (h + 1u) & (FLT_RING_SIZE - 1u);
    if (next == r->tail) {
        r->dropped = r->dropped + 1u;
        return 0;
    }
    r->buf[h] = b;
    r->head = next;
    return 1;
}

static inline int flt_ring_pop(flt_ring_t *r, uint8_t *b)
{
    uint32_t t = r->tail;
    if (t == r->head) {
        return 0;
    }
    *b = r->buf[t];
    r->tail = (t + 1u) & (FLT_RING_SIZE - 1u);
    return 1;
}

static inline int flt_ring_empty(const flt_ring_t *r)
{
    return r->head == r->tail;
}

/* Bytes that can be pushed now without a drop (the producer's view). */
static inline uint32_t flt_ring_space(const flt_ring_t *r)
{
    return (r->tail - r->head - 1u) & (FLT_RING_SIZE - 1u);
}

#endif /* FLT_RING_H */
