#include "add.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_add_prepare(const flt_add_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->size > 0, FLT_ERR_SHAPE);
    /* (x + offset) in [-255, 255] shifted left by left_shift must fit int32: left_shift <= 22. */
    FLT_REQUIRE(flt_in_range(p->left_shift, 0, 22), FLT_ERR_RANGE);
    FLT_REQUIRE(flt_in_range(p->input1_offset, -127, 128) &&
                    flt_in_range(p->input2_offset, -127, 128) &&
                    flt_in_range(p->output_offset, -128, 127),
                FLT_ERR_RANGE);
    FLT_REQUIRE(p->input1_multiplier >= 0 && p->input2_multiplier >= 0 && p->output_multiplier >= 0,
                FLT_ERR_RANGE);
    FLT_REQUIRE(flt_in_range(p->input1_shift, -31, 0) && flt_in_range(p->input2_shift, -31, 0) &&
                    flt_in_range(p->output_shift, -31, 0),
                FLT_ERR_RANGE);
    return flt_check_act(p->act_min, p->act_max);
}

void flt_add_s8(const flt_add_params_t *p, const int8_t *input1, const int8_t *input2,
                int8_t *output)
{
    for (int32_t i = 0; i < p->size; ++i) {
        /* Range: |x + offset| <= 255 < 2^8 and left_shift <= 22, so the shifted values are
         * below 2^30; each rescaled value is at most its input (multipliers < 1), so the sum is
         * below 2^31. */
        const int32_t a = ((int32_t)input1[i] + p->input1_offset) * ((int32_t)1 << p->left_shift);
        const int32_t b = ((int32_t)input2[i] + p->input2_offset) * ((int32_t)1 << p->left_shift);
        const int32_t sa = flt_rounding_divide_by_pot(
            flt_sat_rounding_doubling_high_mul(a, p->input1_multiplier), -(int)p->input1_shift);
        const int32_t sb = flt_rounding_divide_by_pot(
            flt_sat_rounding_doubling_high_mul(b, p->input2_multiplier), -(int)p->input2_shift);
        const int32_t raw = flt_rounding_divide_by_pot(
                                flt_sat_rounding_doubling_high_mul(sa + sb, p->output_multiplier),
                                -(int)p->output_shift) +
                            p->output_offset;
        output[i] = flt_clamp_s8(raw, p->act_min, p->act_max);
    }
}
