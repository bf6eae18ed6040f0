/* mean.h - int8 MEAN over a set of axes (TFLite MEAN, e.g. global average pooling).
 *
 * Contract
 * - The input is viewed as a 4-D row-major tensor dims[0..3] (the generator pads the shape
 *   with leading 1s); reduce[k] != 0 marks axis k as reduced. The output holds the kept axes
 *   in order (keep_dims only changes the shape, not the data), count = product of the reduced
 *   dims.
 * - Arithmetic (TFLM reference QuantizedMeanOrSum, used by TFLM for every int8 MEAN, also when
 *   input and output share their quantization - checked against TFLM):
 *   out = clamp(MBQM(sum - input_zp * count, multiplier, shift) + output_zp, -128, 127), with
 *   (multiplier, shift) = the input_scale / output_scale multiplier folded with 1/count at
 *   generation time (fltiny.codegen.quant.mean_multiplier).
 * - flt_mean_prepare() validates (FLT_ERR_ARG / _SHAPE / _RANGE, writes nothing);
 *   flt_mean_s8() never fails or allocates and writes only `output` (not overlapping input).
 */
#ifndef FLT_KERNELS_MEAN_H
#define FLT_KERNELS_MEAN_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t dims[4];
    int32_t reduce[4];
    int32_t input_zp;
    int32_t output_zp;
    int32_t multiplier;
    int32_t shift;
} flt_mean_params_t;

FLT_NODISCARD flt_status_t flt_mean_prepare(const flt_mean_params_t *p);

void flt_mean_s8(const flt_mean_params_t *p, const int8_t *input, int8_t *output);

#endif /* FLT_KERNELS_MEAN_H */
