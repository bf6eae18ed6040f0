/* flt_loss.h - the two losses of the head, for one sample: value and gradient.
 *
 * Contract
 * - flt_loss_softmax_ce(logits, n, label, loss, dlogits): softmax cross-entropy over n
 *   classes with an integer label in [0, n). Numerically stable, in this exact order:
 *     m = max_i z_i (first maximum);  e_i = flt_expf(z_i - m);
 *     s = sequential sum e_0 + e_1 + ... ;  loss = flt_logf(s) - (z_label - m);
 *     dlogits_i = e_i / s;  dlogits_label = dlogits_label - 1.
 *   s >= 1 (the maximum contributes e^0 = 1), so logf never sees 0.
 * - flt_loss_mse(y, t, n, loss, dy): mean squared error over n outputs:
 *     d_i = y_i - t_i;  loss = (sequential sum of d_i*d_i) / n;  dy_i = (2/n) * d_i
 *   where 2/n is computed once as 2.0f / (float)n.
 * - Buffers: inputs are caller-owned and read only; dlogits / dy (n floats, caller-owned) are
 *   overwritten and may be the same pointer as logits / y (exact aliasing only).
 * - Bad input: NULL -> FLT_ERR_ARG; n 0 -> FLT_ERR_SHAPE; label outside [0, n) ->
 *   FLT_ERR_RANGE. Nothing is written on failure. Non-finite inputs propagate to the
 *   outputs (the training loop checks the loss).
 */
#ifndef FLT_TRAIN_LOSS_H
#define FLT_TRAIN_LOSS_H

#include <stdint.h>

#include "core/flt_status.h"

FLT_NODISCARD flt_status_t flt_loss_softmax_ce(const float *logits, uint32_t n, int32_t label,
                                               float *loss, float *dlogits);

FLT_NODISCARD flt_status_t flt_loss_mse(const float *y, const float *t, uint32_t n, float *loss,
                                        float *dy);

#endif /* FLT_TRAIN_LOSS_H */
