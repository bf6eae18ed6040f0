/* flt_train_loop.h - mini-batch training of the float32 head on a device's samples.
 *
 * Contract
 * - flt_train_step: one optimizer step on one mini-batch, in this order:
 *     for each sample b of the batch (in the given order): forward; loss and dL/doutput;
 *         backward, storing the gradient for b = 0 and adding it for b > 0;
 *     g_i = g_i / (float)batch_len                        (average over the batch; with
 *                                                          clip == 0 folded into the
 *                                                          update's pass, same bits)
 *     flt_clip_grad_norm(g, clip)                          (if clip > 0)
 *     flt_sgd_step(params, g, velocity, global_params)    (weight decay, FedProx, momentum)
 *   *batch_loss = (sequential sum of the sample losses) / (float)batch_len, before the update.
 * - flt_train_epochs: cfg->epochs passes over the n_samples samples. The PRNG (flt_rng.h) is
 *   seeded once with (cfg->seed, FLT_TRAIN_RNG_STREAM); each epoch resets order to the
 *   identity 0..n-1 and Fisher-Yates shuffles it, then takes consecutive batches of
 *   batch_size (the last one smaller when batch_size does not divide n; batch_size > n means
 *   one batch). *mean_loss = the mean sample loss of the last epoch: (sequential sum over
 *   batches of the batch loss sums) / (float)n, each sample's loss taken before the step that
 *   uses it. epoch_losses (optional, cfg->epochs floats) gets that mean for every epoch.
 * - Data: features is n_samples x n_inputs row-major float32 (the dequantized backbone
 *   output). Classification heads (FLT_LOSS_SOFTMAX_CE) read labels[n_samples] (int32 in
 *   [0, n_outputs)) and ignore targets; regression heads (FLT_LOSS_MSE) read
 *   targets[n_samples][n_outputs] and ignore labels. idx (flt_train_step only) lists
 *   batch_len sample indices; NULL means 0..batch_len-1.
 * - Buffers, all caller-owned (sizes from flt_train_sizes in flt_head.h):
 *     params [P] in/out; velocity [P] in/out (the optimizer state, zero it before the first
 *     step of a round); global_params [P] read only (may be NULL when mu == 0);
 *     work [work_len >= FLT_TRAIN_WORK_FLOATS] scratch; order [n_samples] scratch.
 *   No allocation, no global state: calls are reentrant.
 * - Bad input: NULL buffers -> FLT_ERR_ARG; invalid head -> flt_head_check's status;
 *   n_samples / batch_len / batch_size / epochs 0 -> FLT_ERR_ARG; work_len too small ->
 *   FLT_ERR_NOMEM; label out of range or index >= n_samples -> FLT_ERR_RANGE; bad
 *   hyper-parameters -> FLT_ERR_RANGE (see flt_optim.h). These are checked before any
 *   buffer is written. A non-finite input (a sample's feature is inf or NaN), batch loss
 *   or, when clip > 0, gradient norm -> FLT_ERR_NONFINITE, with params/velocity as left by
 *   the previous step (the failing step is not applied). The inputs are checked because the
 *   backward pass skips every term whose dL/dz is 0 (flt_dense.h): a NaN input behind a ReLU
 *   that is off would otherwise vanish instead of poisoning the gradient. With clip == 0 an
 * overflowing gradient is not detected: use clipping.
 * - flt_train_epochs_src: flt_train_epochs with the samples' input vectors taken from a
 *   source instead of a matrix: before sample s is used (forward and backward), src->fn(
 *   src->ctx, s, src->buf) writes its n_inputs floats into src->buf (caller-owned, n_inputs
 *   floats), which is then the sample's x. Everything else, including the order of
 *   operations and the results for the same vectors, is flt_train_epochs's. A source failure
 *   stops training with its status (params/velocity as left by the previous step). NULL src,
 *   src->fn or src->buf -> FLT_ERR_ARG. Used by devices that cannot hold every sample's
 *   features in RAM (they run the frozen backbone again at every use).
 */
#ifndef FLT_TRAIN_LOOP_H
#define FLT_TRAIN_LOOP_H

#include <stdint.h>

#include "core/flt_status.h"
#include "train/flt_head.h"
#include "train/flt_optim.h"

typedef struct {
    uint32_t epochs;
    uint32_t batch_size;
    uint64_t seed;
    flt_sgd_cfg_t sgd;
} flt_train_cfg_t;

typedef flt_status_t (*flt_sample_fn_t)(void *ctx, uint32_t index, float *out);

typedef struct {
    flt_sample_fn_t fn;
    void *ctx;
    float *buf; /* n_inputs floats */
} flt_sample_source_t;

FLT_NODISCARD flt_status_t flt_train_step(const flt_head_t *head, float *params,
                                          const float *global_params, float *velocity,
                                          const float *features, uint32_t n_samples,
                                          const int32_t *labels, const float *targets,
                                          const uint32_t *idx, uint32_t batch_len,
                                          const flt_sgd_cfg_t *sgd, float *work, uint32_t work_len,
                                          float *batch_loss);

FLT_NODISCARD flt_status_t flt_train_epochs(const flt_head_t *head, float *params,
                                            const float *global_params, float *velocity,
                                            const float *features, uint32_t n_samples,
                                            const int32_t *labels, const float *targets,
                                            const flt_train_cfg_t *cfg, float *work,
                                            uint32_t work_len, uint32_t *order, float *mean_loss,
                                            float *epoch_losses);

FLT_NODISCARD flt_status_t flt_train_epochs_src(const flt_head_t *head, float *params,
                                                const float *global_params, float *velocity,
                                                const flt_sample_source_t *src, uint32_t n_samples,
                                                const int32_t *labels, const float *targets,
                                                const flt_train_cfg_t *cfg, float *work,
                                                uint32_t work_len, uint32_t *order,
                                                float *mean_loss, float *epoch_losses);

#endif /* FLT_TRAIN_LOOP_H */
