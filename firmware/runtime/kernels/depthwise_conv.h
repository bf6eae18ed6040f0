/* depthwise_conv.h - int8 depthwise 2-D convolution (TFLite DEPTHWISE_CONV_2D),
 * per-output-channel quantized weights.
 *
 * Contract
 * - Layouts: input NHWC [batches, in_h, in_w, in_c], filter [1, k_h, k_w, out_c] with
 *   out_c = in_c * depth_multiplier (output channel oc = ic * depth_multiplier + m reads input
 *   channel ic), bias [out_c] int32 or NULL, output NHWC [batches, out_h, out_w, out_c].
 * - Arithmetic as conv.h (TFLM reference DepthwiseConvPerChannel): per output channel, the sum
 *   over the taps inside the input of filter * (input + input_offset), plus bias, requantized
 *   with (multiplier[oc], shift[oc]), plus output_offset, clamped to [act_min, act_max].
 * - flt_depthwise_conv_prepare() validates (FLT_ERR_ARG / _SHAPE / _RANGE, writes nothing);
 *   flt_depthwise_conv_s8() never fails or allocates and writes only `output` (which must not
 *   overlap the other buffers). The caller owns every buffer.
 */
#ifndef FLT_KERNELS_DEPTHWISE_CONV_H
#define FLT_KERNELS_DEPTHWISE_CONV_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t depth_multiplier;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_h, pad_w;
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t act_min, act_max;
    const int32_t *multiplier; /* [out_c] */
    const int32_t *shift;      /* [out_c] */
} flt_depthwise_conv_params_t;

FLT_NODISCARD flt_status_t flt_depthwise_conv_prepare(const flt_depthwise_conv_params_t *p);

void flt_depthwise_conv_s8(const flt_depthwise_conv_params_t *p, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, int8_t *output);

#endif /* FLT_KERNELS_DEPTHWISE_CONV_H */
