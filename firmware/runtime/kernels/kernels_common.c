#include "kernels_common.h"

#include <math.h>

/* The two steps of every requantization, inlined into flt_multiply_by_quantized_multiplier (one
 * call per kernel output instead of three: on RV32 at -Os the calls were a third of a small
 * conv's instructions) and wrapped by the public functions below. */
#if defined(__GNUC__)
#define FLT_KC_INLINE static inline __attribute__((always_inline))
#else
#define FLT_KC_INLINE static inline
#endif

FLT_KC_INLINE int32_t srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    /* |a * b| <= 2^62: fits int64. The nudge makes the truncating division round to
     * nearest with ties away from zero. */
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

FLT_KC_INLINE int32_t rdbpot(int32_t x, int exponent)
{
    /* TFLM: (x >> exponent) + (remainder > threshold), remainder = x & mask, in 32-bit
     * arithmetic without a 64-bit shift or division (the int64 form cost RV32 a __divdi3 call
     * per output). The right shift of a negative value is implementation-defined in C99, so the
     * floor is taken on the complement: floor(x / 2^e) = -1 - floor(~x / 2^e) for x < 0, ~x =
     * -x - 1 >= 0. Every value stays in range: mask <= 2^31 - 1, the quotient's magnitude
     * <= 2^31 >> exponent, and the +1 applies only when exponent >= 1. */
    const uint32_t mask = ((uint32_t)1 << exponent) - 1u;
    const uint32_t remainder = (uint32_t)x & mask;
    const uint32_t threshold = (mask >> 1) + (x < 0 ? 1u : 0u);
    const int32_t q =
        x >= 0 ? (int32_t)((uint32_t)x >> exponent) : -1 - (int32_t)(~(uint32_t)x >> exponent);
    return q + (remainder > threshold ? 1 : 0);
}

int32_t flt_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    return srdhm(a, b);
}

int32_t flt_rounding_divide_by_pot(int32_t x, int exponent)
{
    return rdbpot(x, exponent);
}

int32_t flt_saturating_left_shift(int32_t x, int exponent)
{
    if (exponent == 0) {
        return x;
    }
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((int64_t)x * ((int64_t)1 << exponent));
}

int32_t flt_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    /* TFLM multiplies x by 2^left_shift in int32 (x * (1 << left_shift)); callers keep
     * |x| * 2^left_shift below 2^31 (the generator bounds the accumulator range), and the
     * unsigned shift then narrowed reproduces the same bits on two's complement targets
     * (without the 64-bit shift, a libgcc call on 32-bit cores). */
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return rdbpot(srdhm(shifted, multiplier), right_shift);
}

flt_status_t flt_quantize_multiplier(double real_multiplier, int32_t *multiplier, int *shift)
{
    FLT_REQUIRE(multiplier != 0 && shift != 0, FLT_ERR_ARG);
    FLT_REQUIRE(real_multiplier >= 0.0 && real_multiplier <= 1e30, FLT_ERR_RANGE);
    if (real_multiplier == 0.0) {
        *multiplier = 0;
        *shift = 0;
        return FLT_OK;
    }
    int e = 0;
    const double q = frexp(real_multiplier, &e); /* q in [0.5, 1) */
    /* round half away from zero, as std::round; q * 2^31 is exact. */
    int64_t q_fixed = (int64_t)floor(q * 2147483648.0 + 0.5);
    if (q_fixed == ((int64_t)1 << 31)) {
        q_fixed /= 2;
        e += 1;
    }
    if (e < -31) {
        e = 0;
        q_fixed = 0;
    }
    FLT_REQUIRE(e <= 30, FLT_ERR_RANGE);
    *multiplier = (int32_t)q_fixed;
    *shift = e;
    return FLT_OK;
}

int8_t flt_clamp_s8(int32_t x, int32_t lo, int32_t hi)
{
    if (x < lo) {
        x = lo;
    }
    if (x > hi) {
        x = hi;
    }
    return (int8_t)x;
}
