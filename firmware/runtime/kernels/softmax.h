/* softmax.h - int8 softmax over the last axis (TFLite SOFTMAX, int8 in, int8 out).
 *
 * Contract
 * - input and output [outer, depth] int8; output scale 1/256 and zero point -128 (TFLite
 *   requires it). The arithmetic is TFLite's published integer softmax (gemmlowp fixed point):
 *   per row, d = x - max(row); rows entries with d < diff_min give -128; others are rescaled
 *   to Q5.26 with (input_multiplier, input_left_shift) (from beta * input_scale, computed at
 *   generation time), exponentiated with the fixed-point exp on negative values, summed in
 *   Q12.19, inverted with a Newton-Raphson reciprocal, and the quotients scaled to [0, 255]
 *   and offset by -128.
 * - flt_softmax_prepare() validates (FLT_ERR_ARG / _SHAPE / _RANGE, writes nothing);
 *   flt_softmax_s8() never fails or allocates, writes only `output` (not overlapping input).
 */
#ifndef FLT_KERNELS_SOFTMAX_H
#define FLT_KERNELS_SOFTMAX_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t outer;
    int32_t depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} flt_softmax_params_t;

FLT_NODISCARD flt_status_t flt_softmax_prepare(const flt_softmax_params_t *p);

void flt_softmax_s8(const flt_softmax_params_t *p, const int8_t *input, int8_t *output);

#endif /* FLT_KERNELS_SOFTMAX_H */
