#include "conv.h"

#include "check_common.h"
#include "kernels_common.h"

void flt_conv_s8(const flt_conv_params_t *p, const int8_t *input, const int8_t *filter,
                 const int32_t *bias, int8_t *output)
{
    const int32_t groups = p->in_c / p->filter_in_c;
    const int32_t oc_per_group = p->out_c / groups;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t g = oc / oc_per_group;
                    const int8_t *f_oc = filter + (int64_t)oc * p->k_h * p->k_w * p->filter_in_c;
                    /* Range: at most k_h*k_w*filter_in_c <= FLT_MAX_ACC_TERMS products with
                     * |filter| <= 128 and |input + input_offset| <= 255, so |acc| <=
                     * 65536 * 32640 < 2^31 - 2^23; the generator checks that this bound plus
                     * max|bias| stays <= 2^31 - 1. */
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
                            const int8_t *in_px =
                                in_b + ((int64_t)iy * p->in_w + ix) * p->in_c + g * p->filter_in_c;
                            const int8_t *f_px =
                                f_oc + ((int64_t)ky * p->k_w + kx) * p->filter_in_c;
                            for (int32_t ic = 0; ic < p->filter_in_c; ++ic) {
                                acc += (int32_t)f_px[ic] * ((int32_t)in_px[ic] + p->input_offset);
                            }
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
