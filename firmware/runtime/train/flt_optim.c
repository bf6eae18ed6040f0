/* flt_optim.c - see flt_optim.h. */
#include "train/flt_optim.h"

#include <stddef.h>

#include "train/flt_math.h"

static int flt_nonneg_finite(float v)
{
    return flt_isfinite(v) && v >= 0.0f;
}

flt_status_t flt_sgd_cfg_check(const flt_sgd_cfg_t *cfg)
{
    FLT_REQUIRE(cfg != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(flt_nonneg_finite(cfg->lr) && flt_nonneg_finite(cfg->momentum) &&
                    cfg->momentum < 1.0f && flt_nonneg_finite(cfg->mu) &&
                    flt_nonneg_finite(cfg->clip) && flt_nonneg_finite(cfg->weight_decay),
                FLT_ERR_RANGE);
    return FLT_OK;
}

flt_status_t flt_clip_grad_norm(float *grad, uint32_t n, float clip, float *norm)
{
    float acc = 0.0f;
    float nrm;
    uint32_t i;
    FLT_REQUIRE(grad != NULL || n == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(flt_nonneg_finite(clip), FLT_ERR_RANGE);
    for (i = 0u; i < n; ++i) {
        acc = (i == 0u) ? grad[i] * grad[i] : acc + grad[i] * grad[i];
    }
    nrm = flt_sqrtf(acc);
    FLT_REQUIRE(flt_isfinite(nrm), FLT_ERR_NONFINITE);
    if (clip > 0.0f && nrm > clip) {
        const float scale = clip / nrm;
        for (i = 0u; i < n; ++i) {
            grad[i] = grad[i] * scale;
        }
    }
    if (norm != NULL) {
        *norm = nrm;
    }
    return FLT_OK;
}

/* g + weight_decay * w + mu * (w - global[i]), each term only when its coefficient is set, in
 * that order (the one rounding sequence of both SGD steps) */
static float regularized(const flt_sgd_cfg_t *cfg, float w, float g, const float *global_params,
                         uint32_t i)
{
    if (cfg->weight_decay != 0.0f) {
        g = g + cfg->weight_decay * w;
    }
    if (cfg->mu != 0.0f) {
        g = g + cfg->mu * (w - global_params[i]);
    }
    return g;
}

flt_status_t flt_sgd_step(float *params, float *grad, float *velocity, const float *global_params,
                          uint32_t n, const flt_sgd_cfg_t *cfg)
{
    uint32_t i;
    FLT_REQUIRE(params != NULL && grad != NULL && velocity != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_sgd_cfg_check(cfg));
    FLT_REQUIRE(global_params != NULL || cfg->mu == 0.0f, FLT_ERR_ARG);
    for (i = 0u; i < n; ++i) {
        const float w = params[i];
        const float g = regularized(cfg, w, grad[i], global_params, i);
        float v;
        v = cfg->momentum * velocity[i] + g;
        grad[i] = g;
        velocity[i] = v;
        params[i] = w - cfg->lr * v;
    }
    return FLT_OK;
}

flt_status_t flt_sgd_step_mean(float *params, const float *grad_sum, float *velocity,
                               const float *global_params, uint32_t n, float denom,
                               const flt_sgd_cfg_t *cfg)
{
    uint32_t i;
    FLT_REQUIRE(params != NULL && grad_sum != NULL && velocity != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_sgd_cfg_check(cfg));
    FLT_REQUIRE(global_params != NULL || cfg->mu == 0.0f, FLT_ERR_ARG);
    FLT_REQUIRE(flt_isfinite(denom) && denom > 0.0f, FLT_ERR_RANGE);
    if (cfg->weight_decay == 0.0f && cfg->mu == 0.0f) {
        /* the common case without the two optional terms: one pass, no branch inside */
        const float m = cfg->momentum;
        const float lr = cfg->lr;
        for (i = 0u; i < n; ++i) {
            const float v = m * velocity[i] + grad_sum[i] / denom;
            velocity[i] = v;
            params[i] = params[i] - lr * v;
        }
        return FLT_OK;
    }
    for (i = 0u; i < n; ++i) {
        const float w = params[i];
        const float g = regularized(cfg, w, grad_sum[i] / denom, global_params, i);
        float v;
        v = cfg->momentum * velocity[i] + g;
        velocity[i] = v;
        params[i] = w - cfg->lr * v;
    }
    return FLT_OK;
}
