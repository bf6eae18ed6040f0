/* conv_prepare.c - flt_conv_prepare (conv.h): the parameter checks every flt_conv_s8 relies
 * on, shared by the reference conv.c and its target variants (kernels/<target>/conv.c). */
#include "conv.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_conv_prepare(const flt_conv_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->batches > 0 && p->in_h > 0 && p->in_w > 0 && p->in_c > 0 && p->out_h > 0 &&
                    p->out_w > 0 && p->out_c > 0 && p->k_h > 0 && p->k_w > 0 && p->filter_in_c > 0,
                FLT_ERR_SHAPE);
    FLT_REQUIRE(p->in_c % p->filter_in_c == 0, FLT_ERR_SHAPE);
    const int32_t groups = p->in_c / p->filter_in_c;
    FLT_REQUIRE(p->out_c % groups == 0, FLT_ERR_SHAPE);
    FLT_REQUIRE(p->stride_h > 0 && p->stride_w > 0 && p->dil_h > 0 && p->dil_w > 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->pad_h >= 0 && p->pad_w >= 0, FLT_ERR_ARG);
    FLT_REQUIRE(flt_in_range(p->input_offset, -127, 128) &&
                    flt_in_range(p->output_offset, -128, 127),
                FLT_ERR_RANGE);
    /* Accumulator bound: k_h * k_w * filter_in_c products of at most 32640 each. */
    FLT_REQUIRE((int64_t)p->k_h * p->k_w * p->filter_in_c <= FLT_MAX_ACC_TERMS, FLT_ERR_RANGE);
    FLT_TRY(flt_check_act(p->act_min, p->act_max));
    return flt_check_multipliers(p->multiplier, p->shift, p->out_c);
}
