/* conv.h - int8 2-D convolution (TFLite CONV_2D), per-output-channel quantized weights.
 *
 * Contract
 * - Layouts: input NHWC [batches, in_h, in_w, in_c], filter OHWI [out_c, k_h, k_w, in_c / groups],
 *   bias [out_c] int32 (may be NULL: treated as zeros), output NHWC [batches, out_h, out_w, out_c].
 *   groups = in_c / filter_in_c (1 for an ordinary convolution).
 * - Arithmetic (TFLite int8 spec, TFLM reference): acc = bias[oc] + sum over the taps inside the
 *   input of filter * (input + input_offset); out = clamp(MBQM(acc, multiplier[oc], shift[oc])
 *   + output_offset, act_min, act_max). Taps in the padding contribute nothing.
 * - Padding is explicit (pad_h/pad_w = rows/columns added before the first input row/column);
 *   the generator derives it from SAME/VALID as TFLM does. Dilation and strides >= 1.
 * - flt_conv_prepare() checks the parameters (shapes, ranges, accumulator bound) and returns
 *   FLT_ERR_ARG / FLT_ERR_SHAPE / FLT_ERR_RANGE; it writes nothing. flt_conv_s8() assumes a
 *   prepared params struct, never allocates, never fails, writes only `output`, and requires
 *   that output does not overlap input, filter or bias. All buffers are owned by the caller.
 */
#ifndef FLT_KERNELS_CONV_H
#define FLT_KERNELS_CONV_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, filter_in_c;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_h, pad_w;
    int32_t input_offset;  /* minus the input zero point, in [-127, 128] */
    int32_t output_offset; /* the output zero point, in [-128, 127] */
    int32_t act_min, act_max;
    const int32_t *multiplier; /* [out_c] */
    const int32_t *shift;      /* [out_c] */
} flt_conv_params_t;

FLT_NODISCARD flt_status_t flt_conv_prepare(const flt_conv_params_t *p);

void flt_conv_s8(const flt_conv_params_t *p, const int8_t *input, const int8_t *filter,
                 const int32_t *bias, int8_t *output);

#endif /* FLT_KERNELS_CONV_H */
