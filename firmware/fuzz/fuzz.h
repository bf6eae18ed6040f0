/* fuzz.h - what the libFuzzer harnesses of firmware/fuzz share: the entry point's prototype, an
 * assertion that libFuzzer records as a crash, a cursor that reads fuzzer bytes as fields, and
 * the protocol key both ends of the harnesses' links use.
 *
 * Contract
 * - Host only (libc, stdio, abort): the harnesses are built by bench/fuzz.py with clang
 *   -fsanitize=fuzzer,address,undefined and are never part of a firmware image.
 * - FUZZ_ASSERT(cond): when cond is false, prints "fuzz assertion failed: <file>:<line>: <cond>"
 *   to stderr and aborts; libFuzzer then writes the input as a crash-* file. Used for the
 *   properties a harness checks beyond memory safety (round trips, bounds, state invariants).
 * - fuzz_in_t reads the input front to back. fuzz_u8 / fuzz_u16 / fuzz_u32 return 0 for the
 *   bytes past the end (an exhausted input reads as zeros, so every field always has a value);
 *   fuzz_take(in, want, &got) returns a pointer to the next min(want, left) bytes (NULL when
 *   none are left) and consumes them. fuzz_left() is the number of unread bytes.
 * - fuzz_dup(p, n): a heap copy of exactly n bytes (at least 1 allocated, so ASan sees any
 *   access past n; malloc's alignment, so the 4-byte alignment the blob readers need holds).
 *   The caller frees it. Aborts when out of memory.
 * - fuzz_dup_odd(p, n) (n >= 1): a heap copy of p[0..n-1] at an odd address (one byte into
 *   its block), for readers that must refuse a misaligned buffer; free it with
 *   fuzz_free_odd. Aborts when out of memory.
 * - FUZZ_KEY: the 32-byte device key (bytes 1..32, the tests' key); FUZZ_DEVICE_ID the device id.
 */
#ifndef FLT_FUZZ_H
#define FLT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz assertion failed: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

typedef struct {
    const uint8_t *p;
    size_t n;
    size_t pos;
} fuzz_in_t;

static inline fuzz_in_t fuzz_in(const uint8_t *p, size_t n)
{
    fuzz_in_t in;
    in.p = p;
    in.n = n;
    in.pos = 0;
    return in;
}

static inline size_t fuzz_left(const fuzz_in_t *in)
{
    return in->n - in->pos;
}

static inline uint8_t fuzz_u8(fuzz_in_t *in)
{
    return in->pos < in->n ? in->p[in->pos++] : 0u;
}

static inline uint16_t fuzz_u16(fuzz_in_t *in)
{
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)(fuzz_u8(in) << 8));
}

static inline uint32_t fuzz_u32(fuzz_in_t *in)
{
    uint32_t lo = fuzz_u16(in);
    return lo | ((uint32_t)fuzz_u16(in) << 16);
}

static inline const uint8_t *fuzz_take(fuzz_in_t *in, size_t want, size_t *got)
{
    size_t n = want < fuzz_left(in) ? want : fuzz_left(in);
    const uint8_t *p = n > 0u ? in->p + in->pos : NULL;
    in->pos += n;
    *got = n;
    return p;
}

static inline uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = (uint8_t *)malloc(n > 0u ? n : 1u);
    FUZZ_ASSERT(q != NULL);
    if (n > 0u) {
        memcpy(q, p, n);
    }
    return q;
}

static inline uint8_t *fuzz_dup_odd(const uint8_t *p, size_t n)
{
    uint8_t *block = (uint8_t *)malloc(n + 1u);
    FUZZ_ASSERT(block != NULL);
    memcpy(block + 1, p, n);
    return block + 1;
}

static inline void fuzz_free_odd(uint8_t *q)
{
    free(q - 1);
}

#define FUZZ_KEY                                                                                   \
    {                                                                                              \
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, \
            26, 27, 28, 29, 30, 31, 32                                                             \
    }
#define FUZZ_DEVICE_ID 0x42u

#endif /* FLT_FUZZ_H */
