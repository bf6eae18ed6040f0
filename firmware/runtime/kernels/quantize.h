/* quantize.h - TFLite QUANTIZE (int8 -> int8 requantization, float -> int8) and
 * DEQUANTIZE (int8 -> float).
 *
 * Contract
 * - Requantize (TFLM reference): out = clamp(MBQM(x - input_zp, multiplier, shift) + output_zp)
 *   with (multiplier, shift) for input_scale / output_scale computed at generation time.
 * - Quantize float: out = clamp(round_half_away(x / scale) + zero_point) in float arithmetic
 *   (non-finite inputs saturate: NaN gives zero_point). Dequantize: out = (float)(scale * (x - zp))
 *   evaluated in double as TFLM does.
 * - The prepare step validates (FLT_ERR_ARG / _SHAPE / _RANGE, writes nothing); the compute
 *   functions never fail or allocate and write only `output`.
 */
#ifndef FLT_KERNELS_QUANTIZE_H
#define FLT_KERNELS_QUANTIZE_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t size;
    int32_t input_zp;
    int32_t output_zp;
    int32_t multiplier;
    int32_t shift;
    float scale; /* float -> int8: the output scale; int8 -> float: the input scale */
} flt_quantize_params_t;

FLT_NODISCARD flt_status_t flt_quantize_prepare(const flt_quantize_params_t *p);

void flt_requantize_s8(const flt_quantize_params_t *p, const int8_t *input, int8_t *output);

void flt_quantize_f32_s8(const flt_quantize_params_t *p, const float *input, int8_t *output);

void flt_dequantize_s8_f32(const flt_quantize_params_t *p, const int8_t *input, float *output);

#endif /* FLT_KERNELS_QUANTIZE_H */
