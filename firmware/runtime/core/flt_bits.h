/* flt_bits.h - float32 <-> IEEE-754 bit pattern casts, shared by the runtime's components.
 *
 * Part of core/ (with flt_status.h and flt_bytes.h): the one implementation of these casts;
 * components include "core/flt_bits.h" and never re-declare them.
 *
 * Contract: pure functions, no state, cannot fail. Casts go through a union (defined
 * behaviour in C99 TC3, 6.5.2.3 footnote 82) rather than memcpy, so components that include
 * this header still build freestanding (no string.h).
 */
#ifndef FLT_CORE_BITS_H
#define FLT_CORE_BITS_H

#include <stdint.h>

#define FLT_F32_SIGN_MASK 0x80000000u
#define FLT_F32_ABS_MASK 0x7fffffffu
#define FLT_F32_INF_BITS 0x7f800000u

typedef union {
    float f;
    uint32_t u;
} flt_f32_pun_t;

static inline uint32_t flt_f32_bits(float x)
{
    flt_f32_pun_t p;
    p.f = x;
    return p.u;
}

static inline float flt_f32_from_bits(uint32_t u)
{
    flt_f32_pun_t p;
    p.u = u;
    return p.f;
}

/* Whether the float32 with bit pattern `u` is finite (exponent not all ones: not Inf, not NaN). */
static inline int flt_f32_bits_finite(uint32_t u)
{
    return (u & FLT_F32_INF_BITS) != FLT_F32_INF_BITS;
}

#endif /* FLT_CORE_BITS_H */
