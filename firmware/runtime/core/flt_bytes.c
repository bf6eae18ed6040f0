/* flt_bytes.c - see flt_bytes.h. */
#include "flt_bytes.h"

void flt_bytes_copy(void *dst, const void *src, size_t n)
{
    volatile uint8_t *d = (volatile uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    size_t i;
    for (i = 0; i < n; ++i) {
        d[i] = s[i];
    }
}

void flt_bytes_zero(void *dst, size_t n)
{
    volatile uint8_t *d = (volatile uint8_t *)dst;
    size_t i;
    for (i = 0; i < n; ++i) {
        d[i] = 0;
    }
}
