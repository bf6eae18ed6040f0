/* flt_math.c - see flt_math.h. Every constant is a hex float so that C and the Python twin
 * (float.fromhex) start from the very same float32 values. */
#include "train/flt_math.h"

#include "core/flt_bits.h"

uint32_t flt_float_bits(float x)
{
    return flt_f32_bits(x);
}

float flt_bits_float(uint32_t bits)
{
    return flt_f32_from_bits(bits);
}

int flt_isfinite(float x)
{
    return (flt_float_bits(x) & 0x7f800000u) != 0x7f800000u;
}

#define FLT_POS_INF_BITS 0x7f800000u
#define FLT_NEG_INF_BITS 0xff800000u
#define FLT_QNAN_BITS 0x7fc00000u

/* Cody-Waite split of ln(2): LN2_HI has 16 significant bits, so n*LN2_HI is exact for
 * |n| < 2^8 (expf uses |n| <= 150, logf |e| <= 150). */
#define FLT_LN2_HI 0x1.62e400p-1f
#define FLT_LN2_LO 0x1.7f7d1cp-20f
#define FLT_LOG2E 0x1.715476p+0f
#define FLT_EXP_OVER 0x1.62e430p+6f   /* 88.7228394: above it e^x > FLT_MAX */
#define FLT_EXP_UNDER -0x1.9fe368p+6f /* -103.972084: below it e^x < 2^-150 */

/* Taylor coefficients 1/k! rounded to float32. */
#define FLT_EXP_C2 0x1.000000p-1f
#define FLT_EXP_C3 0x1.555556p-3f
#define FLT_EXP_C4 0x1.555556p-5f
#define FLT_EXP_C5 0x1.111112p-7f
#define FLT_EXP_C6 0x1.6c16c2p-10f
#define FLT_EXP_C7 0x1.a01a02p-13f

/* 2/(2k+1) rounded to float32: the atanh series of log. */
#define FLT_LOG_L1 0x1.555556p-1f
#define FLT_LOG_L2 0x1.99999ap-2f
#define FLT_LOG_L3 0x1.24924ap-2f
#define FLT_LOG_L4 0x1.c71c72p-3f

float flt_expf(float x)
{
    float t;
    float fn;
    float r;
    float p;
    int32_t n;

    if (x != x) {
        return x;
    }
    if (x > FLT_EXP_OVER) {
        return flt_bits_float(FLT_POS_INF_BITS);
    }
    if (x < FLT_EXP_UNDER) {
        return 0.0f;
    }
    t = x * FLT_LOG2E;
    /* round half away from zero; |t| <= 150 so the conversion cannot overflow */
    n = (int32_t)(t >= 0.0f ? t + 0.5f : t - 0.5f);
    fn = (float)n;
    r = x - fn * FLT_LN2_HI;
    r = r - fn * FLT_LN2_LO;
    p = FLT_EXP_C7;
    p = p * r + FLT_EXP_C6;
    p = p * r + FLT_EXP_C5;
    p = p * r + FLT_EXP_C4;
    p = p * r + FLT_EXP_C3;
    p = p * r + FLT_EXP_C2;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* p * 2^n with n in [-150, 128]; each factor below is an exact power of two */
    if (n > 127) {
        p = p * 0x1p127f;
        n -= 127;
    }
    if (n < -126) {
        p = p * 0x1p-126f;
        n += 126;
    }
    return p * flt_bits_float((uint32_t)(n + 127) << 23);
}

float flt_logf(float x)
{
    uint32_t u = flt_float_bits(x);
    int32_t e = 0;
    float m;
    float f;
    float s;
    float z;
    float big_r;
    float lm;
    float fe;

    if (x != x) {
        return x;
    }
    if (x == 0.0f) {
        return flt_bits_float(FLT_NEG_INF_BITS);
    }
    if (x < 0.0f) {
        return flt_bits_float(FLT_QNAN_BITS);
    }
    if (u == FLT_POS_INF_BITS) {
        return x;
    }
    if (u < 0x00800000u) { /* subnormal: scale into the normal range (exact) */
        x = x * 0x1p25f;
        u = flt_float_bits(x);
        e = -25;
    }
    e += (int32_t)(u >> 23) - 127;
    u = (u & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) */
    if (u > 0x3fb504f3u) {               /* m > sqrt(2): halve it */
        u -= 0x00800000u;
        e += 1;
    }
    m = flt_bits_float(u);
    f = m - 1.0f; /* exact (Sterbenz) */
    s = f / (2.0f + f);
    z = s * s;
    big_r = FLT_LOG_L4;
    big_r = z * big_r + FLT_LOG_L3;
    big_r = z * big_r + FLT_LOG_L2;
    big_r = z * big_r + FLT_LOG_L1;
    big_r = z * big_r;
    lm = f - s * (f - big_r);
    fe = (float)e;
    return fe * FLT_LN2_HI + (lm + fe * FLT_LN2_LO);
}

float flt_sqrtf(float x)
{
    uint32_t u = flt_float_bits(x);
    int32_t e;
    uint32_t m;
    uint32_t shift;
    uint64_t num;
    uint64_t res = 0;
    uint64_t bit = (uint64_t)1 << 46;
    int32_t eo;

    if (x != x || x == 0.0f || u == FLT_POS_INF_BITS) {
        return x;
    }
    if (u & 0x80000000u) {
        return flt_bits_float(FLT_QNAN_BITS);
    }
    e = (int32_t)(u >> 23);
    m = u & 0x007fffffu;
    if (e == 0) { /* subnormal: normalise the significand */
        e = 1;
        while ((m & 0x00800000u) == 0u) {
            m <<= 1;
            e -= 1;
        }
    } else {
        m |= 0x00800000u;
    }
    e -= 127 + 23; /* x = m * 2^e, m in [2^23, 2^24) */
    /* choose shift in {23, 24} with e - shift even: num = m << shift is in [2^46, 2^48),
     * so floor(sqrt(num)) is in [2^23, 2^24): exactly 24 significant bits */
    shift = (e % 2 != 0) ? 23u : 24u;
    num = (uint64_t)m << shift;
    /* bitwise integer square root: res = floor(sqrt(num)), num becomes num - res^2 */
    while (bit > num) {
        bit >>= 2;
    }
    while (bit != 0u) {
        if (num >= res + bit) {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    /* round to nearest: sqrt > res + 1/2  <=>  remainder > res (ties impossible) */
    if (num > res) {
        res += 1u;
    }
    eo = (e - (int32_t)shift) / 2;
    if (res == ((uint64_t)1 << 24)) {
        res >>= 1;
        eo += 1;
    }
    return flt_bits_float(((uint32_t)(eo + 23 + 127) << 23) | ((uint32_t)res & 0x007fffffu));
}
