/* flt_conv1d.h - float32 1-D convolution layer of the head (FLT_LAYER_CONV1D), one sample.
 *
 * Contract
 * - Geometry and parameter layout: see flt_head.h. x is [in_len][in_ch] and y is
 *   [out_len][out_ch], channels-last (the layout of the int8 backbone's tensors); W is
 *   [out_ch][kernel][in_ch] followed by b[out_ch]. Inputs outside [0, in_len) are zeros of
 *   the padding: their taps are skipped, not multiplied by 0 (so an inf weight on a padded
 *   tap cannot create a NaN, and the sums below have exactly the listed terms).
 * - Exact arithmetic (float32, one rounding per operation as written; build with
 *   -ffp-contract=off so no target fuses a multiply-add). For output position t the valid
 *   taps are k_lo <= k < k_hi (those with 0 <= t*stride + k - pad_left < in_len); they read
 *   consecutive input rows, so W[o][k_lo..k_hi)[*] and x[t*stride+k_lo-pad_left ...][*] are
 *   two contiguous runs of n = (k_hi-k_lo)*in_ch floats, multiplied pairwise and summed:
 *     forward   z = ((w_0*x_0 + w_1*x_1) + ...) + w_{n-1}*x_{n-1}    (k outer, c inner)
 *               z = z + b[o];   y[t][o] = (act == RELU) ? (z > 0 ? z : 0) : z
 *               (four filters share one walk over the window, flt_vec_dot4: no rounding
 *               changes).
 *     backward  given dz = dL/dz [out_len][out_ch] (the activation's mask already applied).
 *               A (t, o) with dz[t][o] == 0 (a ReLU that is off) adds nothing and is
 *               skipped (exact for finite values). gW and gb start at +0.0f when
 *               accumulate == 0 and keep their values otherwise; then, in place, for each
 *               (t, o) with dz[t][o] != 0, t ascending:
 *                 gb[o]       = gb[o] + dz[t][o]
 *                 gW[o][k][c] = gW[o][k][c] + dz[t][o] * x[t*stride+k-pad_left][c]  (valid k)
 *               So a batch accumulates term by term (not as per-sample sums added at the
 *               end): accumulating onto zeros equals storing, and storing then accumulating
 *               the same sample gives 2 * g only to rounding. Four full windows share one
 *               walk over gW[o] (flt_vec_axpy4: the four terms still go in t order).
 *               dx (when not NULL): every dx[i][c] starts at +0.0f, then for t ascending,
 *               o ascending over the (t, o) with dz[t][o] != 0, each valid tap k:
 *                   dx[t*stride+k-pad_left][c] = dx[...][c] + W[o][k][c] * dz[t][o]
 *               (dL/dx before the previous layer's activation; the caller masks it).
 * - Buffers, all caller-owned: w (params of this layer) read only; x [in_size] read only;
 *   y [out_size] written; dz [out_size] read only; gw [out_ch*kernel*in_ch + out_ch]
 *   written or added to; dx [in_size] written, may be NULL (layer 0: no input gradient).
 *   dx must not overlap dz, x or w. No allocation, no state.
 * - No checks: these are the reference kernels behind flt_dense_forward / flt_dense_backward
 *   (flt_dense.h), which validate the head with flt_head_check first. Calling them on a
 *   layer that flt_head_check rejects is undefined.
 */
#ifndef FLT_TRAIN_CONV1D_H
#define FLT_TRAIN_CONV1D_H

#include <stdint.h>

#include "train/flt_head.h"

void flt_conv1d_forward(const flt_layer_t *layer, const float *w, const float *x, float *y);

void flt_conv1d_backward(const flt_layer_t *layer, const float *w, const float *x, const float *dz,
                         float *gw, float *dx, int accumulate);

#endif /* FLT_TRAIN_CONV1D_H */
