/* flt_train_loop.c - see flt_train_loop.h. */
#include "train/flt_train_loop.h"

#include <stddef.h>

#include "train/flt_dense.h"
#include "train/flt_loss.h"
#include "train/flt_math.h"
#include "train/flt_rng.h"

/* Checks shared by both entry points; fills *sz. Writes nothing else. */
static flt_status_t flt_train_check(const flt_head_t *head, float *params,
                                    const float *global_params, float *velocity, int have_features,
                                    uint32_t n_samples, const int32_t *labels, const float *targets,
                                    const flt_sgd_cfg_t *sgd, float *work, uint32_t work_len,
                                    flt_train_sizes_t *sz)
{
    uint32_t i;
    FLT_REQUIRE(params != NULL && velocity != NULL && have_features && work != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_sizes(head, n_samples, sz));
    FLT_TRY(flt_sgd_cfg_check(sgd));
    FLT_REQUIRE(global_params != NULL || sgd->mu == 0.0f, FLT_ERR_ARG);
    FLT_REQUIRE(n_samples != 0u, FLT_ERR_ARG);
    FLT_REQUIRE(work_len >= sz->work_floats, FLT_ERR_NOMEM);
    if (head->loss == FLT_LOSS_SOFTMAX_CE) {
        FLT_REQUIRE(labels != NULL, FLT_ERR_ARG);
        for (i = 0u; i < n_samples; ++i) {
            FLT_REQUIRE(labels[i] >= 0 && (uint32_t)labels[i] < sz->n_outputs, FLT_ERR_RANGE);
        }
    } else {
        FLT_REQUIRE(targets != NULL, FLT_ERR_ARG);
    }
    return FLT_OK;
}

/* 1 when every x[i] is finite. The exponent field plus one exponent step carries into bit
 * 31 exactly for the all-ones exponent (inf, NaN): one OR per element, one test at the end. */
static int flt_all_finite(const float *x, uint32_t n)
{
    uint32_t carry = 0u;
    uint32_t i;
    for (i = 0u; i < n; ++i) {
        carry |= (flt_float_bits(x[i]) & 0x7f800000u) + 0x00800000u;
    }
    return (carry & 0x80000000u) == 0u;
}

/* Sample s's input vector: a row of features, or the source's buffer after filling it;
 * FLT_ERR_NONFINITE when an input is inf or NaN (see flt_train_loop.h "Bad input"). */
static flt_status_t flt_train_sample(const float *features, const flt_sample_source_t *src,
                                     uint32_t n_inputs, uint32_t s, const float **x)
{
    if (features != NULL) {
        *x = features + (size_t)s * n_inputs;
    } else {
        FLT_TRY(src->fn(src->ctx, s, src->buf));
        *x = src->buf;
    }
    FLT_REQUIRE(flt_all_finite(*x, n_inputs), FLT_ERR_NONFINITE);
    return FLT_OK;
}

/* One step on a checked problem; *loss_sum = sum of the batch's sample losses. Inputs come
 * from features when it is not NULL, else from src. */
static flt_status_t flt_train_step_checked(const flt_head_t *head, const flt_train_sizes_t *sz,
                                           float *params, const float *global_params,
                                           float *velocity, const float *features,
                                           const flt_sample_source_t *src, const int32_t *labels,
                                           const float *targets, const uint32_t *idx,
                                           uint32_t batch_len, const flt_sgd_cfg_t *sgd,
                                           float *work, float *loss_sum)
{
    float *grad = work;
    float *acts = grad + sz->n_params;
    float *scratch = acts + sz->n_acts;
    const float *out = acts + (sz->n_acts - sz->n_outputs);
    const float denom = (float)batch_len;
    float sum = 0.0f;
    uint32_t b;
    uint32_t i;

    for (b = 0u; b < batch_len; ++b) {
        const uint32_t s = (idx != NULL) ? idx[b] : b;
        const float *x;
        float loss;
        FLT_TRY(flt_train_sample(features, src, sz->n_inputs, s, &x));
        flt_head_forward_checked(head, params, x, acts);
        if (head->loss == FLT_LOSS_SOFTMAX_CE) {
            FLT_TRY(flt_loss_softmax_ce(out, sz->n_outputs, labels[s], &loss, scratch));
        } else {
            FLT_TRY(flt_loss_mse(out, targets + (size_t)s * sz->n_outputs, sz->n_outputs, &loss,
                                 scratch));
        }
        sum = (b == 0u) ? loss : sum + loss;
        flt_head_backward_checked(head, sz, params, x, acts, scratch, grad, scratch, b != 0u);
    }
    FLT_REQUIRE(flt_isfinite(sum), FLT_ERR_NONFINITE);
    if (sgd->clip > 0.0f) {
        /* the clip needs the averaged gradient's norm: average, clip, then step */
        for (i = 0u; i < sz->n_params; ++i) {
            grad[i] = grad[i] / denom;
        }
        FLT_TRY(flt_clip_grad_norm(grad, sz->n_params, sgd->clip, NULL));
        FLT_TRY(flt_sgd_step(params, grad, velocity, global_params, sz->n_params, sgd));
    } else {
        /* the same bits, with the average folded into the update's pass */
        FLT_TRY(flt_sgd_step_mean(params, grad, velocity, global_params, sz->n_params, denom, sgd));
    }
    *loss_sum = sum;
    return FLT_OK;
}

flt_status_t flt_train_step(const flt_head_t *head, float *params, const float *global_params,
                            float *velocity, const float *features, uint32_t n_samples,
                            const int32_t *labels, const float *targets, const uint32_t *idx,
                            uint32_t batch_len, const flt_sgd_cfg_t *sgd, float *work,
                            uint32_t work_len, float *batch_loss)
{
    flt_train_sizes_t sz;
    float sum;
    uint32_t b;
    FLT_REQUIRE(batch_loss != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_check(head, params, global_params, velocity, features != NULL, n_samples,
                            labels, targets, sgd, work, work_len, &sz));
    FLT_REQUIRE(batch_len != 0u, FLT_ERR_ARG);
    if (idx != NULL) {
        for (b = 0u; b < batch_len; ++b) {
            FLT_REQUIRE(idx[b] < n_samples, FLT_ERR_RANGE);
        }
    } else {
        FLT_REQUIRE(batch_len <= n_samples, FLT_ERR_RANGE);
    }
    FLT_TRY(flt_train_step_checked(head, &sz, params, global_params, velocity, features, NULL,
                                   labels, targets, idx, batch_len, sgd, work, &sum));
    *batch_loss = sum / (float)batch_len;
    return FLT_OK;
}

static flt_status_t flt_train_epochs_any(const flt_head_t *head, float *params,
                                         const float *global_params, float *velocity,
                                         const float *features, const flt_sample_source_t *src,
                                         uint32_t n_samples, const int32_t *labels,
                                         const float *targets, const flt_train_cfg_t *cfg,
                                         float *work, uint32_t work_len, uint32_t *order,
                                         float *mean_loss, float *epoch_losses)
{
    flt_train_sizes_t sz;
    flt_rng_t rng;
    uint32_t epoch;
    float epoch_mean = 0.0f;
    FLT_REQUIRE(cfg != NULL && order != NULL && mean_loss != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_check(head, params, global_params, velocity, features != NULL || src != NULL,
                            n_samples, labels, targets, &cfg->sgd, work, work_len, &sz));
    FLT_REQUIRE(cfg->epochs != 0u && cfg->batch_size != 0u, FLT_ERR_ARG);
    FLT_TRY(flt_rng_seed(&rng, cfg->seed, FLT_TRAIN_RNG_STREAM));

    for (epoch = 0u; epoch < cfg->epochs; ++epoch) {
        uint32_t start;
        uint32_t i;
        float total = 0.0f;
        for (i = 0u; i < n_samples; ++i) {
            order[i] = i;
        }
        FLT_TRY(flt_shuffle_u32(&rng, order, n_samples));
        for (start = 0u; start < n_samples; start += cfg->batch_size) {
            const uint32_t left = n_samples - start;
            const uint32_t len = (left < cfg->batch_size) ? left : cfg->batch_size;
            float sum;
            FLT_TRY(flt_train_step_checked(head, &sz, params, global_params, velocity, features,
                                           src, labels, targets, order + start, len, &cfg->sgd,
                                           work, &sum));
            total = (start == 0u) ? sum : total + sum;
            if (left <= cfg->batch_size) {
                break; /* also keeps start + batch_size from wrapping around */
            }
        }
        epoch_mean = total / (float)n_samples;
        if (epoch_losses != NULL) {
            epoch_losses[epoch] = epoch_mean;
        }
    }
    *mean_loss = epoch_mean;
    return FLT_OK;
}

flt_status_t flt_train_epochs(const flt_head_t *head, float *params, const float *global_params,
                              float *velocity, const float *features, uint32_t n_samples,
                              const int32_t *labels, const float *targets,
                              const flt_train_cfg_t *cfg, float *work, uint32_t work_len,
                              uint32_t *order, float *mean_loss, float *epoch_losses)
{
    FLT_REQUIRE(features != NULL, FLT_ERR_ARG);
    return flt_train_epochs_any(head, params, global_params, velocity, features, NULL, n_samples,
                                labels, targets, cfg, work, work_len, order, mean_loss,
                                epoch_losses);
}

flt_status_t flt_train_epochs_src(const flt_head_t *head, float *params, const float *global_params,
                                  float *velocity, const flt_sample_source_t *src,
                                  uint32_t n_samples, const int32_t *labels, const float *targets,
                                  const flt_train_cfg_t *cfg, float *work, uint32_t work_len,
                                  uint32_t *order, float *mean_loss, float *epoch_losses)
{
    FLT_REQUIRE(src != NULL && src->fn != NULL && src->buf != NULL, FLT_ERR_ARG);
    return flt_train_epochs_any(head, params, global_params, velocity, NULL, src, n_samples, labels,
                                targets, cfg, work, work_len, order, mean_loss, epoch_losses);
}
