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

uint32_t flt_varint_put(uint8_t *p, uint32_t v)
{
    uint32_t n = 0u;
    while (v >= 0x80u) {
        p[n++] = (uint8_t)((v & 0x7fu) | 0x80u);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

flt_status_t flt_varint_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v)
{
    uint32_t out = 0u;
    uint32_t shift = 0u;
    size_t at = *pos;
    uint8_t byte;
    for (;;) {
        FLT_REQUIRE(at < len, FLT_ERR_TRUNCATED);
        byte = buf[at++];
        /* the 5th byte may carry only the top 4 bits of a uint32 and must end the varint */
        FLT_REQUIRE(shift < 28u || (byte & 0xf0u) == 0u, FLT_ERR_FORMAT);
        out |= (uint32_t)(byte & 0x7fu) << shift;
        if ((byte & 0x80u) == 0u) {
            break;
        }
        shift += 7u;
    }
    FLT_REQUIRE(shift == 0u || byte != 0u, FLT_ERR_FORMAT); /* overlong */
    *pos = at;
    *v = out;
    return FLT_OK;
}
