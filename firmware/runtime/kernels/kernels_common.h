/* kernels_common.h - TFLite's fixed-point arithmetic for the int8 reference kernels.
 *
 * Contract
 * - Pure integer functions, no state, no allocation; defined for every argument in the
 *   documented range. They reproduce the arithmetic of the TFLite quantization spec as TFLM's
 *   reference kernels evaluate it ("double rounding": a rounding doubling high multiply, then a
 *   rounding right shift), so a kernel built on them is bit-exact with TFLM.
 * - A real multiplier M > 0 is represented by (multiplier, shift) with
 *   M ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (or 0), shift in [-31, 30].
 *   The pair is computed at code-generation time (fltiny.codegen.quant.quantize_multiplier);
 *   flt_quantize_multiplier() below is the same computation for on-device use.
 * - Activation ranges are closed int8 intervals [act_min, act_max] computed by the generator
 *   from the fused activation (NONE / RELU / RELU6) and the output quantization.
 */
#ifndef FLT_KERNELS_COMMON_H
#define FLT_KERNELS_COMMON_H

#include <stdint.h>

#include "core/flt_status.h"

/* Largest number of products one int8 accumulator may sum. Each product is
 * (int8 weight) * (int8 input + offset), |w| <= 128 and |x + offset| <= 255, so
 * |product| <= 32640 and 65536 products stay below 2^31 - 2^23. The generator checks the
 * exact bound of every op, terms * 32640 + max|bias| <= 2^31 - 1 (and the same times 2^shift
 * when a requantization multiplier exceeds 1), so no int32 accumulator can overflow. */
#define FLT_MAX_ACC_TERMS 65536

/* (a * b * 2) / 2^32 rounded to nearest (ties away from zero), saturating the single
 * overflow case a == b == INT32_MIN to INT32_MAX. */
int32_t flt_sat_rounding_doubling_high_mul(int32_t a, int32_t b);

/* x / 2^exponent rounded to nearest, ties away from zero; exponent in [0, 31]. */
int32_t flt_rounding_divide_by_pot(int32_t x, int exponent);

/* x * multiplier * 2^(shift - 31), rounded as TFLM does (left shift first when shift > 0,
 * rounding right shift after the high multiply when shift < 0). shift in [-31, 30]. */
int32_t flt_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

/* Saturating x * 2^exponent for exponent in [0, 31] (gemmlowp SaturatingRoundingMultiplyByPOT
 * with a positive exponent). */
int32_t flt_saturating_left_shift(int32_t x, int exponent);

/* Decompose real_multiplier (>= 0, finite) into (multiplier, shift) as above. Returns
 * FLT_ERR_RANGE for a negative or non-finite value or one whose shift exceeds 30; the
 * outputs are written only on success. Uses frexp from libm (exact, no transcendental). */
FLT_NODISCARD flt_status_t flt_quantize_multiplier(double real_multiplier, int32_t *multiplier,
                                                   int *shift);

/* Clamp an int32 to [lo, hi] and narrow to int8 (lo and hi are int8 values). */
int8_t flt_clamp_s8(int32_t x, int32_t lo, int32_t hi);

#endif /* FLT_KERNELS_COMMON_H */
