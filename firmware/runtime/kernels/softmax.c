/* Integer softmax: the fixed-point algorithm published with gemmlowp and TFLite
 * (exp on [-1/4, 0) by a Taylor polynomial around -1/8, a barrel of exp(-2^k) factors for the
 * integer part, a Newton-Raphson reciprocal of 1 + x). Q-formats are noted as Qi.f
 * (i integer bits, f = 31 - i fractional bits) on int32 raw values. */
#include "softmax.h"

#include "check_common.h"
#include "kernels_common.h"

/* Fixed-point product of two raw values: the integer bits of the formats add up. */
static int32_t fmul(int32_t a, int32_t b)
{
    return flt_sat_rounding_doubling_high_mul(a, b);
}

/* exp(a) for a in [-1/4, 0), a and the result in Q0.31. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
    const int32_t one_third = 715827883;             /* 1/3 in Q0.31 */
    const int32_t x = a + ((int32_t)1 << 28);        /* a + 1/8 */
    const int32_t x2 = fmul(x, x);
    const int32_t x3 = fmul(x2, x);
    const int32_t x4 = fmul(x2, x2);
    const int32_t x4_over_4 = flt_rounding_divide_by_pot(x4, 2);
    const int32_t poly = flt_rounding_divide_by_pot(fmul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + fmul(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 in Q5.26; the result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a)
{
    static const int32_t barrel[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int32_t one_quarter = (int32_t)1 << 24; /* 1/4 in Q5.26 */
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_quarter = (a & mask) - one_quarter;
    /* Rescale Q5.26 -> Q0.31: a saturating left shift by 5 (the value is in [-1/4, 0)). */
    int32_t result = exp_quarter(flt_saturating_left_shift(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a; /* >= 0, multiple of 1/4 */
    for (int k = 0; k < 7; ++k) {
        /* bit 24 + k of the remainder stands for 2^(k - 2) */
        if (remainder & ((int32_t)1 << (24 + k))) {
            result = fmul(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), x and the result in Q0.31. */
static int32_t one_over_one_plus_x(int32_t a)
{
    /* half_denominator = (a + 1) / 2 rounded (gemmlowp RoundingHalfSum with One = INT32_MAX). */
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int64_t sign = sum >= 0 ? 1 : -1;
    const int32_t half_denominator = (int32_t)((sum + sign) / 2);
    const int32_t c48_17 = 1515870810;   /* 48/17 in Q2.29 */
    const int32_t cm32_17 = -1010580540; /* -32/17 in Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = c48_17 + fmul(half_denominator, cm32_17); /* Q2.29 */
    for (int i = 0; i < 3; ++i) {
        const int32_t hdx = fmul(half_denominator, x);            /* Q2.29 */
        const int32_t one_minus = one_q2 - hdx;                   /* Q2.29 */
        x = x + flt_saturating_left_shift(fmul(x, one_minus), 2); /* Q4.27 -> Q2.29 */
    }
    /* x / 2 reinterpreted as Q1.30, then rescaled to Q0.31. */
    return flt_saturating_left_shift(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

flt_status_t flt_softmax_prepare(const flt_softmax_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->outer > 0 && p->depth > 0, FLT_ERR_SHAPE);
    /* Sum of exps in Q12.19: each term <= 1, so depth < 2^12 terms cannot overflow. */
    FLT_REQUIRE(p->depth < 4096, FLT_ERR_RANGE);
    FLT_REQUIRE(p->input_multiplier >= 0 && flt_in_range(p->input_left_shift, 0, 30) &&
                    p->diff_min <= 0,
                FLT_ERR_RANGE);
    return FLT_OK;
}

/* (x * 2^left_shift) high-multiplied by the multiplier; |x| <= 255 and diff_min bounds the
 * product so that the shifted value fits int32 (TFLM's diff_min is chosen for that). */
static int32_t rescale_diff(const flt_softmax_params_t *p, int32_t diff)
{
    return fmul((int32_t)((int64_t)diff * ((int64_t)1 << p->input_left_shift)),
                p->input_multiplier);
}

void flt_softmax_s8(const flt_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    for (int32_t r = 0; r < p->outer; ++r) {
        const int8_t *in = input + (int64_t)r * p->depth;
        int8_t *out = output + (int64_t)r * p->depth;
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        /* Range: each exp term is <= 1.0, rescaled to Q12.19 it is <= 2^19; depth < 2^12
         * terms sum below 2^31. */
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t e = exp_on_negative_values(rescale_diff(p, diff));
                sum_of_exps += flt_rounding_divide_by_pot(e, 12); /* Q0.31 -> Q12.19 */
            }
        }
        /* Reciprocal of the sum (Q12.19, >= 1 since the max entry contributes 1). */
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t e = exp_on_negative_values(rescale_diff(p, diff));
                const int32_t unsat =
                    flt_rounding_divide_by_pot(fmul(shifted_scale, e), num_bits_over_unit + 31 - 8);
                out[c] = flt_clamp_s8(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
}
