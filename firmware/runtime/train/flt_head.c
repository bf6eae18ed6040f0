/* flt_head.c - see flt_head.h. */
#include "train/flt_head.h"

#include <stddef.h>

flt_status_t flt_head_check(const flt_head_t *head)
{
    uint32_t l;
    uint32_t total = 0u;
    FLT_REQUIRE(head != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(head->n_layers != 0u, FLT_ERR_SHAPE);
    FLT_REQUIRE(head->n_layers <= FLT_HEAD_MAX_LAYERS, FLT_ERR_RANGE);
    FLT_REQUIRE(head->loss == FLT_LOSS_SOFTMAX_CE || head->loss == FLT_LOSS_MSE,
                FLT_ERR_UNSUPPORTED);
    for (l = 0u; l < head->n_layers; ++l) {
        const flt_layer_t *ly = &head->layers[l];
        FLT_REQUIRE(ly->in_size != 0u && ly->in_size <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
        FLT_REQUIRE(ly->out_size != 0u && ly->out_size <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
        FLT_REQUIRE(ly->act == FLT_ACT_NONE || ly->act == FLT_ACT_RELU, FLT_ERR_UNSUPPORTED);
        if (l > 0u) {
            FLT_REQUIRE(ly->in_size == head->layers[l - 1u].out_size, FLT_ERR_SHAPE);
        }
        /* range: in, out <= 2^12, so one layer has <= 2^24 + 2^12 params, and total stays
         * <= 2^24 before the check below fails: no uint32_t overflow across 8 layers */
        total += FLT_DENSE_PARAMS(ly->in_size, ly->out_size);
        FLT_REQUIRE(total <= FLT_HEAD_MAX_PARAMS, FLT_ERR_OVERSIZE);
    }
    return FLT_OK;
}

uint32_t flt_head_n_params(const flt_head_t *head)
{
    if (flt_head_check(head) != FLT_OK) {
        return 0u;
    }
    return flt_head_param_offset(head, head->n_layers - 1u) +
           FLT_DENSE_PARAMS(head->layers[head->n_layers - 1u].in_size,
                            head->layers[head->n_layers - 1u].out_size);
}

uint32_t flt_head_param_offset(const flt_head_t *head, uint32_t layer)
{
    uint32_t l;
    uint32_t off = 0u;
    if (flt_head_check(head) != FLT_OK || layer >= head->n_layers) {
        return 0u;
    }
    for (l = 0u; l < layer; ++l) {
        off += FLT_DENSE_PARAMS(head->layers[l].in_size, head->layers[l].out_size);
    }
    return off;
}

uint32_t flt_head_act_offset(const flt_head_t *head, uint32_t layer)
{
    uint32_t l;
    uint32_t off = 0u;
    if (flt_head_check(head) != FLT_OK || layer >= head->n_layers) {
        return 0u;
    }
    for (l = 0u; l < layer; ++l) {
        off += head->layers[l].out_size;
    }
    return off;
}

flt_status_t flt_train_sizes(const flt_head_t *head, uint32_t n_samples, flt_train_sizes_t *out)
{
    flt_train_sizes_t s;
    uint32_t l;
    uint64_t bytes;
    FLT_REQUIRE(out != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_head_check(head));
    s.n_params = flt_head_n_params(head);
    s.n_acts = 0u;
    s.max_width = 0u;
    for (l = 0u; l < head->n_layers; ++l) {
        s.n_acts += head->layers[l].out_size;
        if (head->layers[l].out_size > s.max_width) {
            s.max_width = head->layers[l].out_size;
        }
    }
    s.n_inputs = head->layers[0].in_size;
    s.n_outputs = head->layers[head->n_layers - 1u].out_size;
    /* range: P <= 2^24, A <= 8*2^12, Wmax <= 2^12: the sum fits in uint32_t */
    s.work_floats = FLT_TRAIN_WORK_FLOATS(s.n_params, s.n_acts, s.max_width);
    s.opt_state_floats = FLT_TRAIN_OPT_STATE_FLOATS(s.n_params);
    s.order_len = n_samples;
    bytes = 4u * ((uint64_t)s.work_floats + (uint64_t)s.opt_state_floats + (uint64_t)n_samples);
    FLT_REQUIRE(bytes <= UINT32_MAX, FLT_ERR_OVERSIZE);
    s.total_bytes = (uint32_t)bytes;
    *out = s;
    return FLT_OK;
}
