/* flt_vec.c - see flt_vec.h. */
#include "train/flt_vec.h"

float flt_vec_dot(const float *restrict a, const float *restrict b, uint32_t n)
{
    const float *const end = a + n;
    const float *const end4 = end - ((n - 1u) & 3u);
    float acc = a[0] * b[0];
    a += 1;
    b += 1;
    while (a != end4) {
        acc = acc + a[0] * b[0];
        acc = acc + a[1] * b[1];
        acc = acc + a[2] * b[2];
        acc = acc + a[3] * b[3];
        a += 4;
        b += 4;
    }
    while (a != end) {
        acc = acc + a[0] * b[0];
        a += 1;
        b += 1;
    }
    return acc;
}

void flt_vec_dot2(const float *restrict a, const float *restrict c, const float *restrict b,
                  uint32_t n, float *restrict r)
{
    const float *const end = b + n;
    const float *const end4 = end - ((n - 1u) & 3u);
    float acc0 = a[0] * b[0];
    float acc1 = c[0] * b[0];
    a += 1;
    c += 1;
    b += 1;
    while (b != end4) {
        const float b0 = b[0];
        const float b1 = b[1];
        const float b2 = b[2];
        const float b3 = b[3];
        acc0 = acc0 + a[0] * b0;
        acc1 = acc1 + c[0] * b0;
        acc0 = acc0 + a[1] * b1;
        acc1 = acc1 + c[1] * b1;
        acc0 = acc0 + a[2] * b2;
        acc1 = acc1 + c[2] * b2;
        acc0 = acc0 + a[3] * b3;
        acc1 = acc1 + c[3] * b3;
        a += 4;
        c += 4;
        b += 4;
    }
    while (b != end) {
        acc0 = acc0 + a[0] * b[0];
        acc1 = acc1 + c[0] * b[0];
        a += 1;
        c += 1;
        b += 1;
    }
    r[0] = acc0;
    r[1] = acc1;
}

/* One element of flt_vec_dot4: the four sums take a[q][i] * b[i], in the order q = 0..3
 * (independent sums: the order between them does not matter, each stays sequential in i). */
#define FLT_DOT4_STEP(i)          \
    do {                          \
        const float bi = b[i];    \
        acc0 = acc0 + a0[i] * bi; \
        acc1 = acc1 + a1[i] * bi; \
        acc2 = acc2 + a2[i] * bi; \
        acc3 = acc3 + a3[i] * bi; \
    } while (0)

void flt_vec_dot4(const float *restrict a, size_t stride, const float *restrict b, uint32_t n,
                  float *restrict r)
{
    const float *a0 = a;
    const float *a1 = a + stride;
    const float *a2 = a1 + stride;
    const float *a3 = a2 + stride;
    const float *const end = b + n;
    const float *const end4 = end - ((n - 1u) & 3u);
    float acc0 = a0[0] * b[0];
    float acc1 = a1[0] * b[0];
    float acc2 = a2[0] * b[0];
    float acc3 = a3[0] * b[0];
    a0 += 1;
    a1 += 1;
    a2 += 1;
    a3 += 1;
    b += 1;
    while (b != end4) {
        FLT_DOT4_STEP(0);
        FLT_DOT4_STEP(1);
        FLT_DOT4_STEP(2);
        FLT_DOT4_STEP(3);
        a0 += 4;
        a1 += 4;
        a2 += 4;
        a3 += 4;
        b += 4;
    }
    while (b != end) {
        FLT_DOT4_STEP(0);
        a0 += 1;
        a1 += 1;
        a2 += 1;
        a3 += 1;
        b += 1;
    }
    r[0] = acc0;
    r[1] = acc1;
    r[2] = acc2;
    r[3] = acc3;
}

/* One element of flt_vec_dot4x2: eight independent sums, each sequential in i. */
#define FLT_DOT4X2_STEP(i)     \
    do {                       \
        const float u = b0[i]; \
        const float v = b1[i]; \
        float w = a0[i];       \
        acc00 = acc00 + w * u; \
        acc01 = acc01 + w * v; \
        w = a1[i];             \
        acc10 = acc10 + w * u; \
        acc11 = acc11 + w * v; \
        w = a2[i];             \
        acc20 = acc20 + w * u; \
        acc21 = acc21 + w * v; \
        w = a3[i];             \
        acc30 = acc30 + w * u; \
        acc31 = acc31 + w * v; \
    } while (0)

void flt_vec_dot4x2(const float *restrict a, size_t stride, const float *restrict b,
                    size_t b_stride, uint32_t n, float *restrict r)
{
    const float *a0 = a;
    const float *a1 = a + stride;
    const float *a2 = a1 + stride;
    const float *a3 = a2 + stride;
    const float *b0 = b;
    const float *b1 = b + b_stride;
    const float *const end = b0 + n;
    const float *const end2 = end - ((n - 1u) & 1u);
    float acc00 = a0[0] * b0[0];
    float acc01 = a0[0] * b1[0];
    float acc10 = a1[0] * b0[0];
    float acc11 = a1[0] * b1[0];
    float acc20 = a2[0] * b0[0];
    float acc21 = a2[0] * b1[0];
    float acc30 = a3[0] * b0[0];
    float acc31 = a3[0] * b1[0];
    a0 += 1;
    a1 += 1;
    a2 += 1;
    a3 += 1;
    b0 += 1;
    b1 += 1;
    while (b0 != end2) {
        FLT_DOT4X2_STEP(0);
        FLT_DOT4X2_STEP(1);
        a0 += 2;
        a1 += 2;
        a2 += 2;
        a3 += 2;
        b0 += 2;
        b1 += 2;
    }
    if (b0 != end) {
        FLT_DOT4X2_STEP(0);
    }
    r[0] = acc00;
    r[1] = acc01;
    r[2] = acc10;
    r[3] = acc11;
    r[4] = acc20;
    r[5] = acc21;
    r[6] = acc30;
    r[7] = acc31;
}

/* One element of flt_vec_axpy4: y[i] takes its four terms in the order 0..3. */
#define FLT_AXPY4_STEP(i) (y[i] = (((y[i] + a0 * x0[i]) + a1 * x1[i]) + a2 * x2[i]) + a3 * x3[i])

void flt_vec_axpy4(float *restrict y, const float *restrict a, const float *const *restrict x,
                   uint32_t n)
{
    const float a0 = a[0];
    const float a1 = a[1];
    const float a2 = a[2];
    const float a3 = a[3];
    const float *x0 = x[0];
    const float *x1 = x[1];
    const float *x2 = x[2];
    const float *x3 = x[3];
    float *const end = y + n;
    float *const end4 = end - (n & 3u);
    while (y != end4) {
        FLT_AXPY4_STEP(0);
        FLT_AXPY4_STEP(1);
        FLT_AXPY4_STEP(2);
        FLT_AXPY4_STEP(3);
        y += 4;
        x0 += 4;
        x1 += 4;
        x2 += 4;
        x3 += 4;
    }
    while (y != end) {
        FLT_AXPY4_STEP(0);
        y += 1;
        x0 += 1;
        x1 += 1;
        x2 += 1;
        x3 += 1;
    }
}

void flt_vec_axpy_rows4(float *const *restrict y, const float *restrict a, const float *restrict x,
                        uint32_t n)
{
    const float a0 = a[0];
    const float a1 = a[1];
    const float a2 = a[2];
    const float a3 = a[3];
    float *y0 = y[0];
    float *y1 = y[1];
    float *y2 = y[2];
    float *y3 = y[3];
    const float *const end = x + n;
    const float *const end2 = end - (n & 1u);
    while (x != end2) {
        const float x0 = x[0];
        const float x1 = x[1];
        y0[0] = y0[0] + a0 * x0;
        y1[0] = y1[0] + a1 * x0;
        y2[0] = y2[0] + a2 * x0;
        y3[0] = y3[0] + a3 * x0;
        y0[1] = y0[1] + a0 * x1;
        y1[1] = y1[1] + a1 * x1;
        y2[1] = y2[1] + a2 * x1;
        y3[1] = y3[1] + a3 * x1;
        y0 += 2;
        y1 += 2;
        y2 += 2;
        y3 += 2;
        x += 2;
    }
    if (x != end) {
        y0[0] = y0[0] + a0 * x[0];
        y1[0] = y1[0] + a1 * x[0];
        y2[0] = y2[0] + a2 * x[0];
        y3[0] = y3[0] + a3 * x[0];
    }
}

void flt_vec_axpy(float *restrict y, float a, const float *restrict x, uint32_t n)
{
    float *const end = y + n;
    float *const end4 = end - (n & 3u);
    while (y != end4) {
        const float y0 = y[0] + a * x[0];
        const float y1 = y[1] + a * x[1];
        const float y2 = y[2] + a * x[2];
        const float y3 = y[3] + a * x[3];
        y[0] = y0;
        y[1] = y1;
        y[2] = y2;
        y[3] = y3;
        y += 4;
        x += 4;
    }
    while (y != end) {
        y[0] = y[0] + a * x[0];
        y += 1;
        x += 1;
    }
}

void flt_vec_scale(float *restrict y, float a, const float *restrict x, uint32_t n)
{
    float *const end = y + n;
    float *const end4 = end - (n & 3u);
    while (y != end4) {
        y[0] = a * x[0];
        y[1] = a * x[1];
        y[2] = a * x[2];
        y[3] = a * x[3];
        y += 4;
        x += 4;
    }
    while (y != end) {
        y[0] = a * x[0];
        y += 1;
        x += 1;
    }
}

void flt_vec_affine(const float *restrict w, size_t stride, const float *restrict x, uint32_t n,
                    const float *restrict b, uint32_t m, int relu, float *restrict y)
{
    uint32_t j = 0u;
    /* four rows per walk over x: each input loaded once for four sums */
    for (; j + 3u < m; j += 4u) {
        float acc[4];
        flt_vec_dot4(w, stride, x, n, acc);
        y[j] = flt_vec_bias_act(acc[0], b[j], relu);
        y[j + 1u] = flt_vec_bias_act(acc[1], b[j + 1u], relu);
        y[j + 2u] = flt_vec_bias_act(acc[2], b[j + 2u], relu);
        y[j + 3u] = flt_vec_bias_act(acc[3], b[j + 3u], relu);
        w += 4u * stride;
    }
    if (j + 1u < m) {
        float acc[2];
        flt_vec_dot2(w, w + stride, x, n, acc);
        y[j] = flt_vec_bias_act(acc[0], b[j], relu);
        y[j + 1u] = flt_vec_bias_act(acc[1], b[j + 1u], relu);
        w += 2u * stride;
        j += 2u;
    }
    if (j < m) {
        y[j] = flt_vec_bias_act(flt_vec_dot(w, x, n), b[j], relu);
    }
}
