/* flt_gap1d.h - global average pooling over time (FLT_LAYER_GAP1D), one sample.
 *
 * Contract
 * - x is [len][ch] channels-last with ch = out_size and len = in_size / out_size (see
 *   flt_head.h); y is [ch]. No parameters, activation always NONE.
 * - Exact arithmetic (float32, one rounding per operation as written):
 *     forward   s = ((x[0][c] + x[1][c]) + ...) + x[len-1][c]   (sequential in t)
 *               y[c] = s / (float)len
 *     backward  dx[t][c] = dz[c] / (float)len   for every t  (dL/dx before the previous
 *               layer's activation; the caller masks it)
 *     backward_masked  the same values with the previous layer's ReLU mask applied as they
 *               are written: dx[t][c] = (a[t][c] > 0) ? dz[c] / (float)len : 0.0f, where a is
 *               that layer's output [len][ch] (a == NULL: exactly flt_gap1d_backward). One
 *               division per channel, one pass over dx instead of two.
 * - Buffers, all caller-owned: x [in_size] read only, y [out_size] written; dz [out_size]
 *   read only, a [in_size] read only (may be NULL), dx [in_size] written and must not overlap
 *   dz or a. No allocation, no state.
 * - No checks: reference kernels behind flt_dense_forward / flt_dense_backward (flt_dense.h),
 *   which validate the head first. Undefined on a layer that flt_head_check rejects.
 */
#ifndef FLT_TRAIN_GAP1D_H
#define FLT_TRAIN_GAP1D_H

#include <stdint.h>

#include "train/flt_head.h"

void flt_gap1d_forward(const flt_layer_t *layer, const float *x, float *y);

void flt_gap1d_backward(const flt_layer_t *layer, const float *dz, float *dx);

void flt_gap1d_backward_masked(const flt_layer_t *layer, const float *dz, const float *a,
                               float *dx);

#endif /* FLT_TRAIN_GAP1D_H */
