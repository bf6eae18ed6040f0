/* flt_dense.h - forward and backward pass of the float32 head, one sample at a time.
 *
 * Contract
 * - Layout of params, grad and acts: see flt_head.h. All float32, no allocation.
 *   flt_dense_forward / flt_dense_backward run a whole head of any layer kinds (the name
 *   predates the kinds and is kept: C callers and ctypes bindings use it); each layer goes
 *   to its kernel: flt_dense_layer_* below, flt_conv1d_* (flt_conv1d.h), flt_gap1d_*
 *   (flt_gap1d.h), whose headers spell out their exact arithmetic.
 * - Exact arithmetic of a dense layer (mirrored by tests/oracles/train.py, bit for bit up to
 *   the sign of an all-zero sum, see below):
 *     forward  z_j = ((W[j][0]*x[0] + W[j][1]*x[1]) + ...) + W[j][in-1]*x[in-1], then
 *              z_j = z_j + b_j; a_j = (act == RELU) ? (z_j > 0 ? z_j : 0) : z_j
 *              (sums are sequential in k, starting from the first product; four rows
 *              share one walk over x, flt_vec.h, which changes no rounding).
 *     backward given dz_j = dL/dz_j; a row j with dz_j == 0 (+0 or -0: a ReLU that is off,
 *              mostly) contributes nothing and is skipped:
 *              dz_j != 0: gW[j][k] = dz_j * x[k]; gb[j] = dz_j
 *                         (accumulating: gW[j][k] = gW[j][k] + dz_j * x[k], gb[j] = gb[j] + dz_j)
 *              dz_j == 0: gW[j][k] = +0, gb[j] = +0 (accumulating: left as they are)
 *              dx_k (when dx is not NULL) = +0, then + W[j][k]*dz_j for each j with
 *              dz_j != 0, ascending (a sequential sum; it differs from the sum started at
 *              the first product only in the sign of a zero, which no later step reads:
 *              a zero dz is skipped whatever its sign).
 *              Skipping is exact for finite values (x + (+-0) == x for x != 0); a NaN or
 *              inf behind a ReLU that is off is not propagated, which is why the training
 *              loop rejects non-finite inputs itself (flt_train_loop.h).
 * - Whole head, backward given d = dL/da of the last layer:
 *              d_j = (act_last == RELU) ? (a_j > 0 ? d_j : 0) : d_j        (now dL/dz)
 *              for l = last .. 0: the layer's backward kernel gives its parameter gradient
 *              and, for l > 0 only, dL/da_{l-1}; then, if layer l-1 is RELU,
 *              d_k = (a_{l-1,k} > 0) ? d_k : 0. Layer 0's input gradient is never formed.
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
 * - flt_head_forward_checked / flt_head_backward_checked: flt_dense_forward /
 *   flt_dense_backward without the checks, for the training loop, which checks the head and
 *   sizes its buffers once per call instead of twice per sample. The head must have passed
 *   flt_head_check, sz must be its flt_train_sizes, and the buffers must be as large as the
 *   checked functions require; anything else is undefined.
 * - flt_dense_layer_forward / flt_dense_layer_backward: the dense kernel on one layer of a
 *   checked head (no checks). w is the layer's W then b; y [out_size] written; dz
 *   [out_size] read; gw [in*out + out] written or added to; dx [in_size] written, may be
 *   NULL, must not overlap dz.
 */
#ifndef FLT_TRAIN_DENSE_H
#define FLT_TRAIN_DENSE_H

#include <stdint.h>

#include "core/flt_status.h"
#include "train/flt_head.h"

FLT_NODISCARD flt_status_t flt_dense_forward(const flt_head_t *head, const float *params,
                                             const float *x, float *acts, uint32_t acts_len);

FLT_NODISCARD flt_status_t flt_dense_backward(const flt_head_t *head, const float *params,
                                              const float *x, const float *acts, const float *dout,
                                              float *grad, uint32_t grad_len, float *scratch,
                                              uint32_t scratch_len, int accumulate);

void flt_head_forward_checked(const flt_head_t *head, const float *params, const float *x,
                              float *acts);

void flt_head_backward_checked(const flt_head_t *head, const flt_train_sizes_t *sz,
                               const float *params, const float *x, const float *acts,
                               const float *dout, float *grad, float *scratch, int accumulate);

void flt_dense_layer_forward(const flt_layer_t *layer, const float *w, const float *x, float *y);

void flt_dense_layer_backward(const flt_layer_t *layer, const float *w, const float *x,
                              const float *dz, float *gw, float *dx, int accumulate);

#endif /* FLT_TRAIN_DENSE_H */
