/* fully_connected.h - int8 fully connected layer (TFLite FULLY_CONNECTED).
 *
 * Contract
 * - Layouts: input [batches, depth] (any tensor whose flat size is batches * depth), weights
 *   [units, depth] int8 (symmetric, zero point 0), bias [units] int32 or NULL,
 *   output [batches, units].
 * - Quantization per tensor (n_multipliers == 1) or per output unit (n_multipliers == units).
 * - Arithmetic (TFLM reference): acc = bias[u] + sum_d weights[u][d] * (input[d] + input_offset);
 *   out = clamp(MBQM(acc, multiplier, shift) + output_offset, act_min, act_max).
 * - flt_fully_connected_prepare() validates (FLT_ERR_ARG / _SHAPE / _RANGE, writes nothing);
 *   flt_fully_connected_s8() never fails or allocates and writes only `output` (no overlap with
 *   the other buffers). The caller owns every buffer.
 */
#ifndef FLT_KERNELS_FULLY_CONNECTED_H
#define FLT_KERNELS_FULLY_CONNECTED_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t batches;
    int32_t depth;
    int32_t units;
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t act_min, act_max;
    int32_t n_multipliers;     /* 1 (per tensor) or units (per channel) */
    const int32_t *multiplier; /* [n_multipliers] */
    const int32_t *shift;      /* [n_multipliers] */
} flt_fully_connected_params_t;

FLT_NODISCARD flt_status_t flt_fully_connected_prepare(const flt_fully_connected_params_t *p);

void flt_fully_connected_s8(const flt_fully_connected_params_t *p, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output);

#endif /* FLT_KERNELS_FULLY_CONNECTED_H */
