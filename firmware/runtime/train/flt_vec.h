/* flt_vec.h - the float32 inner loops of the training kernels (dot products and axpys).
 *
 * Contract
 * - What: the contiguous-memory loops that flt_dense.c and flt_conv1d.c spend their time in.
 *   They are functions of their own, not inlined: a call costs a few instructions per row or
 *   window, and a small function keeps every pointer in a register, where the same loops
 *   inlined into a kernel's nested loops had their pointers spilled to the stack at -Os.
 *   Each is one pointer walk over n contiguous floats, unrolled; the unrolling never reorders
 *   the arithmetic: every result is exactly the sequential expression below, one float32
 *   rounding per operation. Build with -ffp-contract=off (every fltiny build does): no target
 *   fuses a multiply-add, so host and device give the same bits. (Cortex-M4F's VMLA.F32,
 *   which GCC emits for `acc + a * b`, rounds the product before the addition: it is not a
 *   fused multiply-add and gives the bits of the separate VMUL + VADD.)
 *     flt_vec_dot(a, b, n)              ((a0*b0 + a1*b1) + ...) + a[n-1]*b[n-1]     (n >= 1)
 *     flt_vec_dot2(a, c, b, n, r)       r[0] = flt_vec_dot(a, b, n), r[1] = flt_vec_dot(c, b, n)
 *                                       in one walk (each b[i] loaded once)          (n >= 1)
 *     flt_vec_dot4(a, s, b, n, r)       r[q] = flt_vec_dot(a + q*s, b, n) for q = 0..3, in one
 *                                       walk (four rows s floats apart)              (n >= 1)
 *     flt_vec_dot4x2(a, s, b, t, n, r)  r[2q+p] = flt_vec_dot(a + q*s, b + p*t, n), q = 0..3,
 *                                       p = 0..1: four rows times two vectors in one walk
 *     flt_vec_axpy(y, a, x, n)          y[i] = y[i] + a * x[i]
 *     flt_vec_axpy4(y, a, x, n)         y[i] = (((y[i] + a[0]*x[0][i]) + a[1]*x[1][i])
 *                                               + a[2]*x[2][i]) + a[3]*x[3][i]: the bits of
 *                                       four flt_vec_axpy calls in that order, with y loaded
 *                                       and stored once
 *     flt_vec_axpy_rows4(y, a, x, n)    y[q][i] = y[q][i] + a[q] * x[i] for q = 0..3: four
 *                                       rows fed by the same x (each x[i] loaded once);
 *                                       the four rows must not overlap
 *     flt_vec_scale(y, a, x, n)         y[i] = a * x[i]
 *     flt_vec_affine(w, s, x, n, b, m, relu, y)
 *                                       y[j] = flt_vec_bias_act(flt_vec_dot(w + j*s, x, n),
 *                                       b[j], relu) for j = 0..m-1, rows four (then two, one)
 *                                       per walk: a dense layer, or a conv's filters on one
 *                                       window (n >= 1)
 *     flt_vec_bias_act(acc, b, relu)    acc + b, then 0 when relu and not above 0 (inline)
 * - Buffers: caller-owned; an output must not overlap any other buffer of the same call
 *   (restrict). No state, cannot fail.
 */
#ifndef FLT_TRAIN_VEC_H
#define FLT_TRAIN_VEC_H

#include <stddef.h>
#include <stdint.h>

float flt_vec_dot(const float *restrict a, const float *restrict b, uint32_t n);

void flt_vec_dot2(const float *restrict a, const float *restrict c, const float *restrict b,
                  uint32_t n, float *restrict r);

void flt_vec_dot4(const float *restrict a, size_t stride, const float *restrict b, uint32_t n,
                  float *restrict r);

void flt_vec_dot4x2(const float *restrict a, size_t stride, const float *restrict b,
                    size_t b_stride, uint32_t n, float *restrict r);

void flt_vec_axpy(float *restrict y, float a, const float *restrict x, uint32_t n);

void flt_vec_axpy4(float *restrict y, const float *restrict a, const float *const *restrict x,
                   uint32_t n);

void flt_vec_axpy_rows4(float *const *restrict y, const float *restrict a, const float *restrict x,
                        uint32_t n);

void flt_vec_scale(float *restrict y, float a, const float *restrict x, uint32_t n);

void flt_vec_affine(const float *restrict w, size_t stride, const float *restrict x, uint32_t n,
                    const float *restrict b, uint32_t m, int relu, float *restrict y);

static inline float flt_vec_bias_act(float acc, float bias, int relu)
{
    acc = acc + bias;
    return (relu && !(acc > 0.0f)) ? 0.0f : acc;
}

#endif /* FLT_TRAIN_VEC_H */
