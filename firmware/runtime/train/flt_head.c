/* flt_head.c - see flt_head.h. */
#include "train/flt_head.h"

#include <stddef.h>

/* Geometry of one CONV1D layer (sizes already checked non-zero and <= FLT_HEAD_MAX_WIDTH). */
static flt_status_t flt_conv1d_check(const flt_layer_t *ly)
{
    uint32_t in_len;
    uint32_t out_len;
    int64_t pad_right;
    int64_t right_max;
    FLT_REQUIRE(ly->in_ch != 0u && ly->in_ch <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
    FLT_REQUIRE(ly->out_ch != 0u && ly->out_ch <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
    FLT_REQUIRE(ly->kernel != 0u && ly->kernel <= FLT_HEAD_MAX_KERNEL, FLT_ERR_RANGE);
    FLT_REQUIRE(ly->stride != 0u && ly->stride <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
    FLT_REQUIRE(ly->pad_left < ly->kernel, FLT_ERR_RANGE);
    FLT_REQUIRE(ly->in_size % ly->in_ch == 0u, FLT_ERR_SHAPE);
    FLT_REQUIRE(ly->out_size % ly->out_ch == 0u, FLT_ERR_SHAPE);
    in_len = ly->in_size / ly->in_ch;
    out_len = ly->out_size / ly->out_ch;
    /* range: every term <= 2^12 (out_len, stride <= 2^12, kernel <= 2^6): the signed 64-bit
     * expression cannot overflow */
    pad_right = (int64_t)(out_len - 1u) * (int64_t)ly->stride + (int64_t)ly->kernel -
                (int64_t)in_len - (int64_t)ly->pad_left;
    right_max = (int64_t)ly->pad_left + 1;
    if (right_max > (int64_t)ly->kernel - 1) {
        right_max = (int64_t)ly->kernel - 1;
    }
    FLT_REQUIRE(pad_right > -(int64_t)ly->stride && pad_right <= right_max, FLT_ERR_SHAPE);
    return FLT_OK;
}

static flt_status_t flt_layer_check(const flt_layer_t *ly)
{
    FLT_REQUIRE(ly->kind == FLT_LAYER_DENSE || ly->kind == FLT_LAYER_CONV1D ||
                    ly->kind == FLT_LAYER_GAP1D,
                FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(ly->act == FLT_ACT_NONE || ly->act == FLT_ACT_RELU, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(ly->kind != FLT_LAYER_GAP1D || ly->act == FLT_ACT_NONE, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(ly->in_size != 0u && ly->in_size <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
    FLT_REQUIRE(ly->out_size != 0u && ly->out_size <= FLT_HEAD_MAX_WIDTH, FLT_ERR_RANGE);
    if (ly->kind == FLT_LAYER_CONV1D) {
        return flt_conv1d_check(ly);
    }
    /* DENSE and GAP1D: no window geometry */
    FLT_REQUIRE(ly->kernel == 0u && ly->stride == 0u && ly->pad_left == 0u, FLT_ERR_SHAPE);
    if (ly->kind == FLT_LAYER_DENSE) {
        FLT_REQUIRE(ly->in_ch == 0u && ly->out_ch == 0u, FLT_ERR_SHAPE);
    } else {
        FLT_REQUIRE(ly->in_ch == 0u || ly->in_ch == ly->out_size, FLT_ERR_SHAPE);
        FLT_REQUIRE(ly->out_ch == 0u || ly->out_ch == ly->out_size, FLT_ERR_SHAPE);
        FLT_REQUIRE(ly->in_size % ly->out_size == 0u, FLT_ERR_SHAPE);
    }
    return FLT_OK;
}

uint32_t flt_layer_n_params(const flt_layer_t *layer)
{
    switch (layer->kind) {
    case FLT_LAYER_DENSE:
        return FLT_DENSE_PARAMS(layer->in_size, layer->out_size);
    case FLT_LAYER_CONV1D:
        return FLT_CONV1D_PARAMS(layer->in_ch, layer->out_ch, layer->kernel);
    default:
        return 0u;
    }
}

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
        FLT_TRY(flt_layer_check(ly));
        if (l > 0u) {
            FLT_REQUIRE(ly->in_size == head->layers[l - 1u].out_size, FLT_ERR_SHAPE);
        }
        /* range: a checked dense layer has in, out <= 2^12: <= 2^24 + 2^12 params; a checked
         * conv has in_ch, out_ch <= 2^12 and kernel <= 2^6: <= 2^30 + 2^12. total is <= 2^24
         * before this addition (else the check below already failed), so it stays < 2^31:
         * no uint32_t overflow across 8 layers */
        total += flt_layer_n_params(ly);
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
           flt_layer_n_params(&head->layers[head->n_layers - 1u]);
}

uint32_t flt_head_param_offset(const flt_head_t *head, uint32_t layer)
{
    uint32_t l;
    uint32_t off = 0u;
    if (flt_head_check(head) != FLT_OK || layer >= head->n_layers) {
        return 0u;
    }
    for (l = 0u; l < layer; ++l) {
        off += flt_layer_n_params(&head->layers[l]);
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
        /* out_size is the largest buffer a layer needs: its own dL/dz, and (for l > 0) its
         * input gradient of in_size == out_size of layer l-1 (see flt_head.h "Sizes") */
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
