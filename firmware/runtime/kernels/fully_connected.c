#include "fully_connected.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_fully_connected_prepare(const flt_fully_connected_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->batches > 0 && p->depth > 0 && p->units > 0, FLT_ERR_SHAPE);
    FLT_REQUIRE(p->n_multipliers == 1 || p->n_multipliers == p->units, FLT_ERR_SHAPE);
    FLT_REQUIRE(flt_in_range(p->input_offset, -127, 128) &&
                    flt_in_range(p->output_offset, -128, 127),
                FLT_ERR_RANGE);
    FLT_REQUIRE(p->depth <= FLT_MAX_ACC_TERMS, FLT_ERR_RANGE);
    FLT_TRY(flt_check_act(p->act_min, p->act_max));
    return flt_check_multipliers(p->multiplier, p->shift, p->n_multipliers);
}

void flt_fully_connected_s8(const flt_fully_connected_params_t *p, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t per_channel = p->n_multipliers > 1;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * p->depth;
        for (int32_t u = 0; u < p->units; ++u) {
            const int8_t *w_u = weights + (int64_t)u * p->depth;
            /* Range: depth <= FLT_MAX_ACC_TERMS products of magnitude <= 128 * 255 = 32640,
             * so |acc| < 2^31 - 2^23 before the bias; the generator checks that bound plus
             * max|bias| stays <= 2^31 - 1. */
            int32_t acc = 0;
            for (int32_t d = 0; d < p->depth; ++d) {
                acc += (int32_t)w_u[d] * ((int32_t)in_b[d] + p->input_offset);
            }
            if (bias != 0) {
                acc += bias[u];
            }
            const int32_t k = per_channel ? u : 0;
            acc = flt_multiply_by_quantized_multiplier(acc, p->multiplier[k], (int)p->shift[k]);
            acc += p->output_offset;
            output[(int64_t)b * p->units + u] = flt_clamp_s8(acc, p->act_min, p->act_max);
        }
    }
}
