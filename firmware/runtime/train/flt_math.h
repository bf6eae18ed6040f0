/* flt_math.h - bit-reproducible float32 exp, log and sqrt for the training runtime.
 *
 * Contract
 * - What: flt_expf, flt_logf and flt_sqrtf, written in plain float32 (and integer) arithmetic
 *   so that the same C source yields the same bits on every IEEE-754 target (x86-64 host,
 *   Cortex-M with or without FPU, RV32 soft-float). No libm is used: glibc's and newlib's
 *   expf/logf differ in the last bit, which would make host and device training drift apart.
 *   Requires -ffp-contract=off (no fused multiply-add) and float evaluated in float
 *   (FLT_EVAL_METHOD 0; true on all targets we build for).
 * - Accuracy: flt_expf and flt_logf are within a few ulp of the correctly rounded result
 *   (tested against numpy on a grid); flt_sqrtf is correctly rounded (equal to IEEE sqrt).
 * - Algorithms (mirrored operation by operation in fltiny/twins/train.py):
 *   expf: n = trunc(x*log2(e) +- 0.5); r = (x - n*LN2_HI) - n*LN2_LO (Cody-Waite);
 *         p = Horner Taylor polynomial of e^r up to r^7; result p * 2^n by multiplication
 *         with exact powers of two (two steps in the subnormal / near-overflow range).
 *   logf: x = 2^e * m with m in [sqrt(1/2), sqrt(2)); f = m - 1; s = f/(2+f); z = s*s;
 *         R = z*(2/3 + z*(2/5 + z*(2/7 + z*2/9))); log(m) = f - s*(f - R)  (the atanh
 *         series); result e*LN2_HI + (log(m) + e*LN2_LO).
 *   sqrtf: exact integer square root of the 24-bit significand (shifted to 48 bits) with
 *         round to nearest; ties cannot occur.
 * - Special values: expf(NaN) = NaN, expf(x > 88.7228394) = +inf, expf(x < -103.972084) = +0.
 *   logf(NaN) = NaN, logf(x < 0) = NaN, logf(+-0) = -inf, logf(+inf) = +inf.
 *   sqrtf(NaN) = NaN, sqrtf(x < 0) = NaN, sqrtf(+-0) = +-0, sqrtf(+inf) = +inf.
 * - Pure functions: no state, no buffers, cannot fail.
 */
#ifndef FLT_TRAIN_MATH_H
#define FLT_TRAIN_MATH_H

#include <stdint.h>

float flt_expf(float x);
float flt_logf(float x);
float flt_sqrtf(float x);

/* The IEEE-754 bit pattern of a float and back (union type punning, defined in C99 TC3). */
uint32_t flt_float_bits(float x);
float flt_bits_float(uint32_t bits);

/* 1 when x is neither infinite nor NaN. */
int flt_isfinite(float x);

#endif /* FLT_TRAIN_MATH_H */
