#include "depthwise_conv.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_depthwise_conv_prepare(const flt_depthwise_conv_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->batches > 0 && p->in_h > 0 && p->in_w > 0 && p->in_c > 0 && p->out_h > 0 &&
                    p->out_w > 0 && p->out_c > 0 && p->k_h > 0 && p->k_w > 0 &&
                    p->depth_multiplier > 0,
                FLT_ERR_SHAPE);
    FLT_REQUIRE((int64_t)p->in_c * p->depth_multiplier == p->out_c, FLT_ERR_SHAPE);
    FLT_REQUIRE(p->stride_h > 0 && p->stride_w > 0 && p->dil_h > 0 && p->dil_w > 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->pad_h >= 0 && p->pad_w >= 0, FLT_ERR_ARG);
    FLT_REQUIRE(flt_in_range(p->input_offset, -127, 128) &&
                    flt_in_range(p->output_offset, -128, 127),
                FLT_ERR_RANGE);
    FLT_REQUIRE((int64_t)p->k_h * p->k_w <= FLT_MAX_ACC_TERMS, FLT_ERR_RANGE);
    FLT_TRY(flt_check_act(p->act_min, p->act_max));
    return flt_check_multipliers(p->multiplier, p->shift, p->out_c);
}

void flt_depthwise_conv_s8(const flt_depthwise_conv_params_t *p, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, int8_t *output)
{
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                for (int32_t ic = 0; ic < p->in_c; ++ic) {
                    for (int32_t m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        /* Range: at most k_h*k_w <= FLT_MAX_ACC_TERMS products of magnitude
                         * <= 128 * 255 = 32640, so |acc| < 2^31 - 2^23 before the bias;
                         * the generator checks bound + max|bias| <= 2^31 - 1. */
                        int32_t acc = 0;
                        for (int32_t ky = 0; ky < p->k_h; ++ky) {
                            const int32_t iy = iy0 + ky * p->dil_h;
                            if (iy < 0 || iy >= p->in_h) {
                                continue;
                            }
                            for (int32_t kx = 0; kx < p->k_w; ++kx) {
                                const int32_t ix = ix0 + kx * p->dil_w;
                                if (ix < 0 || ix >= p->in_w) {
                                    continue;
                                }
                                const int32_t x = in_b[((int64_t)iy * p->in_w + ix) * p->in_c + ic];
                                const int32_t w =
                                    filter[((int64_t)ky * p->k_w + kx) * p->out_c + oc];
                                acc += w * (x + p->input_offset);
                            }
                        }
                        if (bias != 0) {
                            acc += bias[oc];
                        }
                        acc = flt_multiply_by_quantized_multiplier(acc, p->multiplier[oc],
                                                                   (int)p->shift[oc]);
                        acc += p->output_offset;
                        output[(((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
                            flt_clamp_s8(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
