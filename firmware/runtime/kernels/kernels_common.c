#include "kernels_common.h"

#include <math.h>

int32_t flt_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
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

int32_t flt_rounding_divide_by_pot(int32_t x, int exponent)
{
    /* mask < 2^31 and remainder in [0, mask]: all values fit int64 / int32. */
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t remainder = (int64_t)x & mask;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99, arithmetic
     * on every compiler fltiny targets (gcc, clang, arm-none-eabi, riscv). Dividing the
     * int64 with floor semantics avoids relying on it. */
    int64_t q = (int64_t)x / ((int64_t)1 << exponent);
    if ((int64_t)x < q * ((int64_t)1 << exponent)) {
        q -= 1; /* floor for negative x */
    }
    return (int32_t)(q + (remainder > threshold ? 1 : 0));
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
     * int64 product then narrowed reproduces the same bits on two's complement targets. */
    const int32_t shifted = (int32_t)((int64_t)x * ((int64_t)1 << left_shift));
    return flt_rounding_divide_by_pot(flt_sat_rounding_doubling_high_mul(shifted, multiplier),
                                      right_shift);
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
