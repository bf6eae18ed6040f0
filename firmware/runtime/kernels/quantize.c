#include "quantize.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_quantize_prepare(const flt_quantize_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->size > 0, FLT_ERR_SHAPE);
    FLT_REQUIRE(flt_in_range(p->input_zp, -128, 127) && flt_in_range(p->output_zp, -128, 127),
                FLT_ERR_RANGE);
    FLT_REQUIRE(p->multiplier >= 0 && flt_in_range(p->shift, -31, 30), FLT_ERR_RANGE);
    FLT_REQUIRE(p->scale > 0.0f && p->scale <= 3.0e38f, FLT_ERR_RANGE);
    return FLT_OK;
}

void flt_requantize_s8(const flt_quantize_params_t *p, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < p->size; ++i) {
        /* |x - zp| <= 255: the MBQM left shift (<= 30 only for multipliers > 2^22, which the
         * generator rejects) keeps it within int32. */
        const int32_t v = flt_multiply_by_quantized_multiplier((int32_t)input[i] - p->input_zp,
                                                               p->multiplier, (int)p->shift);
        output[i] = flt_clamp_s8(v + p->output_zp, -128, 127);
    }
}

void flt_quantize_f32_s8(const flt_quantize_params_t *p, const float *input, int8_t *output)
{
    for (int32_t i = 0; i < p->size; ++i) {
        const float q = input[i] / p->scale;
        int32_t v;
        if (!(q == q)) {
            v = 0;
        } else if (q >= 256.0f) {
            v = 256;
        } else if (q <= -256.0f) {
            v = -256;
        } else {
            /* round half away from zero without libm: truncate |q| + 0.5 */
            v = q >= 0.0f ? (int32_t)(q + 0.5f) : -(int32_t)(-q + 0.5f);
        }
        output[i] = flt_clamp_s8(v + p->output_zp, -128, 127);
    }
}

void flt_dequantize_s8_f32(const flt_quantize_params_t *p, const int8_t *input, float *output)
{
    for (int32_t i = 0; i < p->size; ++i) {
        output[i] = (float)((double)p->scale * (double)((int32_t)input[i] - p->input_zp));
    }
}
