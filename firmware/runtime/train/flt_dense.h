/* flt_dense.h - forward and backward pass of the float32 dense head, one sample at a time.
 *
 * Contract
 * - Layout of params, grad and acts: see flt_head.h. All float32, no allocation.
 * - Exact arithmetic (mirrored by fltiny/twins/train.py, bit for bit):
 *     forward  z_j = ((W[j][0]*x[0] + W[j][1]*x[1]) + ...) + W[j][in-1]*x[in-1], then
 *              z_j = z_j + b_j; a_j = (act == RELU) ? (z_j > 0 ? z_j : 0) : z_j
 *              (sums are sequential in k, starting from the first product).
 *     backward given d = dL/da of the last layer:
 *              d_j = (act == RELU) ? (a_j > 0 ? d_j : 0) : d_j       (now dL/dz)
 *              gW[j][k] = d_j * x[k]; gb[j] = d_j   (or gW += ..., gb += ... when accumulating)
 *              for l > 0: dn_k = sequential sum over j = 0.. of W[j][k]*d_j, giving dL/da of
 *              layer l-1, and so on down to layer 0.
 * - flt_dense_forward(head, params, x, acts, acts_len): x has layers[0].in_size floats
 *   (caller-owned, read only); acts (caller-owned, >= n_acts floats) receives every layer's
 *   output; the network output is acts + n_acts - out_size(last).
 * - flt_dense_backward(head, params, x, acts, dout, grad, grad_len, scratch, scratch_len,
 *   accumulate): x and acts as left by flt_dense_forward for the same sample; dout is
 *   dL/d(output), out_size(last) floats; grad (>= n_params floats) receives dL/dparams
 *   (overwritten when accumulate == 0, added to when accumulate != 0); scratch is
 *   >= 2*max_width floats of caller-owned workspace (contents unspecified afterwards).
 *   dout may point into scratch only if it equals scratch (it is read before scratch is
 *   written). Inputs are never modified.
 * - Bad input: NULL pointer -> FLT_ERR_ARG; invalid head -> flt_head_check's status;
 *   acts_len < n_acts, grad_len < n_params or scratch_len < 2*max_width -> FLT_ERR_NOMEM.
 *   Checks run before anything is written.
 */
#ifndef FLT_TRAIN_DENSE_H
#define FLT_TRAIN_DENSE_H

#include <stdint.h>

#include "flt_status.h"
#include "train/flt_head.h"

FLT_NODISCARD flt_status_t flt_dense_forward(const flt_head_t *head, const float *params,
                                             const float *x, float *acts, uint32_t acts_len);

FLT_NODISCARD flt_status_t flt_dense_backward(const flt_head_t *head, const float *params,
                                              const float *x, const float *acts,
                                              const float *dout, float *grad,
                                              uint32_t grad_len, float *scratch,
                                              uint32_t scratch_len, int accumulate);

#endif /* FLT_TRAIN_DENSE_H */
