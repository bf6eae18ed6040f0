/* flt_bytes.h - byte helpers of every runtime component: copy, wipe, little-endian load/store.
 *
 * Part of core/ (with flt_status.h and flt_bits.h): the one implementation of these helpers,
 * included by kernels/, train/, delta/, proto/, app/ and the ports; nothing else re-declares
 * them. Depends on nothing but <stddef.h> and <stdint.h>.
 *
 * Contract
 * - The runtime must compile freestanding (no libc headers on some cross toolchains), so
 *   flt_bytes_copy / flt_bytes_zero replace memcpy / memset. Their loops write through a
 *   volatile pointer so the compiler neither turns them back into libc calls nor drops the
 *   wipe of key material.
 * - flt_le_get* / flt_le_put* read or write an unsigned integer (or a float32's IEEE-754 bit
 *   pattern) as little-endian bytes at `p`, whatever the host's byte order or alignment.
 * - flt_varint_*: LEB128 of a uint32 (7 bits per byte, low group first, bit 7 set on every
 *   byte but the last; 1 to 5 bytes). flt_varint_put writes flt_varint_len(v) bytes at p and
 *   returns that count. flt_varint_get reads one varint from buf[*pos .. len-1] and advances
 *   *pos: FLT_ERR_TRUNCATED when it runs past len, FLT_ERR_FORMAT when it is longer than
 *   needed (a last byte 0 after the first) or above 32 bits; *v is written on success only.
 * - The others cannot fail. The pointers must be valid for n bytes (for the le helpers: 2 or
 *   4 bytes; NULL only when n == 0); copies must not overlap. The caller owns every buffer.
 */
#ifndef FLT_CORE_BYTES_H
#define FLT_CORE_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "flt_bits.h"
#include "flt_status.h"

void flt_bytes_copy(void *dst, const void *src, size_t n);
void flt_bytes_zero(void *dst, size_t n);

static inline void flt_le_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void flt_le_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t flt_le_get16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static inline uint32_t flt_le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* A float32 as its 4 little-endian IEEE-754 bytes (NaN payloads and -0 kept bit for bit). */
static inline void flt_le_put_f32(uint8_t *p, float v)
{
    flt_le_put32(p, flt_f32_bits(v));
}

static inline float flt_le_get_f32(const uint8_t *p)
{
    return flt_f32_from_bits(flt_le_get32(p));
}

static inline uint32_t flt_varint_len(uint32_t v)
{
    return 1u + (v >= (1u << 7)) + (v >= (1u << 14)) + (v >= (1u << 21)) + (v >= (1u << 28));
}

uint32_t flt_varint_put(uint8_t *p, uint32_t v);
FLT_NODISCARD flt_status_t flt_varint_get(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v);

#endif /* FLT_CORE_BYTES_H */
