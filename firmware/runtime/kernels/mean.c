#include "mean.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_mean_prepare(const flt_mean_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    int64_t count = 1;
    for (int k = 0; k < 4; ++k) {
        FLT_REQUIRE(p->dims[k] > 0, FLT_ERR_SHAPE);
        if (p->reduce[k]) {
            count *= p->dims[k];
        }
    }
    /* Sum bound: count values of magnitude <= 128 and the zero-point correction
     * |input_zp * count| <= 128 * count: |sum - zp*count| <= 2^8 * count <= 2^31 - 1 needs
     * count < 2^23. */
    FLT_REQUIRE(count < ((int64_t)1 << 23), FLT_ERR_RANGE);
    FLT_REQUIRE(flt_in_range(p->input_zp, -128, 127) && flt_in_range(p->output_zp, -128, 127),
                FLT_ERR_RANGE);
    FLT_REQUIRE(p->multiplier >= 0 && flt_in_range(p->shift, -31, 30), FLT_ERR_RANGE);
    return FLT_OK;
}

void flt_mean_s8(const flt_mean_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t out_n[4], red_n[4];
    int32_t count = 1;
    for (int k = 0; k < 4; ++k) {
        out_n[k] = p->reduce[k] ? 1 : p->dims[k];
        red_n[k] = p->reduce[k] ? p->dims[k] : 1;
        count *= red_n[k];
    }
    int64_t o = 0;
    int32_t i[4];
    for (int32_t o0 = 0; o0 < out_n[0]; ++o0) {
        for (int32_t o1 = 0; o1 < out_n[1]; ++o1) {
            for (int32_t o2 = 0; o2 < out_n[2]; ++o2) {
                for (int32_t o3 = 0; o3 < out_n[3]; ++o3) {
                    /* Range: count < 2^23 values of magnitude <= 128: |sum| < 2^30. */
                    int32_t sum = 0;
                    for (int32_t a0 = 0; a0 < red_n[0]; ++a0) {
                        for (int32_t a1 = 0; a1 < red_n[1]; ++a1) {
                            for (int32_t a2 = 0; a2 < red_n[2]; ++a2) {
                                for (int32_t a3 = 0; a3 < red_n[3]; ++a3) {
                                    i[0] = p->reduce[0] ? a0 : o0;
                                    i[1] = p->reduce[1] ? a1 : o1;
                                    i[2] = p->reduce[2] ? a2 : o2;
                                    i[3] = p->reduce[3] ? a3 : o3;
                                    sum += input[(((int64_t)i[0] * p->dims[1] + i[1]) * p->dims[2] +
                                                  i[2]) *
                                                     p->dims[3] +
                                                 i[3]];
                                }
                            }
                        }
                    }
                    /* |sum - zp * count| <= 256 * count < 2^31 (prepare); when shift > 0 the
                     * generator checks 256 * count * 2^shift < 2^31 for MBQM's left shift. */
                    const int32_t v = flt_multiply_by_quantized_multiplier(
                                          sum - p->input_zp * count, p->multiplier, (int)p->shift) +
                                      p->output_zp;
                    output[o++] = flt_clamp_s8(v, -128, 127);
                }
            }
        }
    }
}
