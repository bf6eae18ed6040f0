/* flt_optim.h - gradient clipping and SGD with momentum, weight decay and FedProx.
 *
 * Contract
 * - flt_clip_grad_norm(grad, n, clip, norm): norm = flt_sqrtf(g_0*g_0 + g_1*g_1 + ...)
 *   (sequential float32 sum); when clip > 0 and norm > clip, every g_i = g_i * (clip / norm)
 *   (the factor computed once). clip == 0 disables clipping (the norm is still reported).
 *   *norm may be NULL. A non-finite norm -> FLT_ERR_NONFINITE with grad unchanged.
 * - flt_sgd_step(params, grad, velocity, global_params, n, cfg): for each i, in this order
 *   (all float32, each line one rounding per operation as written):
 *       if (weight_decay != 0)  g = g + weight_decay * w
 *       if (mu != 0)            g = g + mu * (w - w_global)        (FedProx, Li et al. 2020)
 *                               v = momentum * v + g
 *                               w = w - lr * v
 *   grad is used as scratch (holds the final g afterwards); params and velocity are updated
 *   in place; velocity (the optimizer state, n floats) must be zeroed by the caller before
 *   the first step. global_params may be NULL when mu == 0.
 * - flt_sgd_step_mean(params, grad_sum, velocity, global_params, n, denom, cfg): exactly
 *   flt_sgd_step on the gradient g_i = grad_sum[i] / denom (one division per element, the
 *   same bits as dividing first), in one pass; grad_sum is only read. The training loop
 *   uses it when clipping is off, so the batch average costs no pass of its own. denom must
 *   be finite and > 0 (else FLT_ERR_RANGE, checked with the rest before anything is written).
 * - In the training loop the batch gradient is averaged, then clipped, then passed here: the
 *   clip bounds the data term only; weight decay and the proximal pull are not clipped.
 * - Bad input: NULL buffers -> FLT_ERR_ARG; a hyper-parameter non-finite, negative, or
 *   momentum >= 1 -> FLT_ERR_RANGE. Checked before anything is written.
 */
#ifndef FLT_TRAIN_OPTIM_H
#define FLT_TRAIN_OPTIM_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    float lr;           /* learning rate, >= 0 */
    float momentum;     /* in [0, 1) */
    float mu;           /* FedProx proximal coefficient, >= 0 (0: plain SGD) */
    float clip;         /* max global L2 norm of the averaged gradient, >= 0 (0: off) */
    float weight_decay; /* L2 coefficient, >= 0 (0: off) */
} flt_sgd_cfg_t;

FLT_NODISCARD flt_status_t flt_sgd_cfg_check(const flt_sgd_cfg_t *cfg);

FLT_NODISCARD flt_status_t flt_clip_grad_norm(float *grad, uint32_t n, float clip, float *norm);

FLT_NODISCARD flt_status_t flt_sgd_step(float *params, float *grad, float *velocity,
                                        const float *global_params, uint32_t n,
                                        const flt_sgd_cfg_t *cfg);

FLT_NODISCARD flt_status_t flt_sgd_step_mean(float *params, const float *grad_sum, float *velocity,
                                             const float *global_params, uint32_t n, float denom,
                                             const flt_sgd_cfg_t *cfg);

#endif /* FLT_TRAIN_OPTIM_H */
