/* pooling.h - int8 average and max pooling (TFLite AVERAGE_POOL_2D, MAX_POOL_2D).
 *
 * Contract
 * - Layouts: input NHWC [batches, in_h, in_w, c], output NHWC [batches, out_h, out_w, c].
 *   Input and output share scale and zero point (TFLite requires it), so no requantization.
 * - Each output reads the window rows [oy*stride_h - pad_h, + f_h) and columns likewise,
 *   clipped to the input (padding never counts, also not in the average's divisor).
 * - Average (TFLM reference): the int32 sum of the n window values divided by n rounding to
 *   nearest, ties away from zero; max: the largest value. Then clamp to [act_min, act_max].
 * - flt_pool_prepare() validates (FLT_ERR_ARG / _SHAPE / _RANGE), including that every window
 *   overlaps the input (an empty window has no average); it writes nothing. The compute
 *   functions never fail or allocate and write only `output` (not overlapping `input`).
 */
#ifndef FLT_KERNELS_POOLING_H
#define FLT_KERNELS_POOLING_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t batches;
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t f_h, f_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t act_min, act_max;
} flt_pool_params_t;

FLT_NODISCARD flt_status_t flt_pool_prepare(const flt_pool_params_t *p);

void flt_avg_pool_s8(const flt_pool_params_t *p, const int8_t *input, int8_t *output);

void flt_max_pool_s8(const flt_pool_params_t *p, const int8_t *input, int8_t *output);

#endif /* FLT_KERNELS_POOLING_H */
