/* rv32/conv.c - flt_conv_s8 for RV32IMC (ESP32-C3, qemu-rv32): the reference arithmetic of
 * ../conv.c in portable C99 shaped for a core without SIMD, where each MAC is at best a byte
 * load, a multiply and an add. Four output channels share each input load and its offset add
 * (the input offset is added once per input byte, not once per product); the inner product is
 * unrolled by four over pointer walks, its n % 4 tail straight-line; the valid taps of each
 * output are computed once (a kx and ky range, dilation included), so no tap is
 * bounds-checked; with dilation 1 and one group a kernel row's valid taps are one contiguous
 * run of input. Bit-exact: the same products are summed in int32 (in another order; every
 * partial sum is bounded by the range argument below, so none wraps) and requantized by the
 * same kernels_common functions. The build uses this file instead of ../conv.c on RV32 boards
 * (fltiny.build.project.kernel_variant); because it is portable C, the host build can use it
 * too (fltiny.native.build, kernel_variant="rv32"), so the codegen equality tests check it
 * against TFLM. flt_conv_prepare is ../conv_prepare.c for both. */
#include "conv.h"

#include "check_common.h"
#include "kernels_common.h"

/* Bias, requantization and clamping of one output, exactly as ../conv.c. */
static int8_t conv_out(const flt_conv_params_t *p, const int32_t *bias, int32_t oc, int32_t acc)
{
    if (bias != 0) {
        acc += bias[oc];
    }
    acc = flt_multiply_by_quantized_multiplier(acc, p->multiplier[oc], (int)p->shift[oc]);
    acc += p->output_offset;
    return flt_clamp_s8(acc, p->act_min, p->act_max);
}

/* acc[j] += sum over i < n of f[j * fs + i] * (x[i] + offset), j = 0..3: four filters of
 * stride fs over the same n inputs, each input loaded and offset once. */
static void dot4(const int8_t *x, const int8_t *f, int32_t fs, int32_t n, int32_t offset,
                 int32_t acc[4])
{
    const int8_t *f0 = f;
    const int8_t *f1 = f0 + fs;
    const int8_t *f2 = f1 + fs;
    const int8_t *f3 = f2 + fs;
    const int8_t *end4 = x + (n & ~(int32_t)3);
    const int8_t *end = x + n;
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    while (x != end4) {
        const int32_t x0 = x[0] + offset;
        const int32_t x1 = x[1] + offset;
        const int32_t x2 = x[2] + offset;
        const int32_t x3 = x[3] + offset;
        a0 += f0[0] * x0 + f0[1] * x1 + f0[2] * x2 + f0[3] * x3;
        a1 += f1[0] * x0 + f1[1] * x1 + f1[2] * x2 + f1[3] * x3;
        a2 += f2[0] * x0 + f2[1] * x1 + f2[2] * x2 + f2[3] * x3;
        a3 += f3[0] * x0 + f3[1] * x1 + f3[2] * x2 + f3[3] * x3;
        x += 4;
        f0 += 4;
        f1 += 4;
        f2 += 4;
        f3 += 4;
    }
    /* the last n % 4 inputs, straight-line (a loop costs RV32 five pointer steps and a branch
     * per input) */
    switch (end - x) {
    case 3:
        a0 += f0[2] * (x[2] + offset);
        a1 += f1[2] * (x[2] + offset);
        a2 += f2[2] * (x[2] + offset);
        a3 += f3[2] * (x[2] + offset);
        /* fall through */
    case 2:
        a0 += f0[1] * (x[1] + offset);
        a1 += f1[1] * (x[1] + offset);
        a2 += f2[1] * (x[1] + offset);
        a3 += f3[1] * (x[1] + offset);
        /* fall through */
    case 1:
        a0 += f0[0] * (x[0] + offset);
        a1 += f1[0] * (x[0] + offset);
        a2 += f2[0] * (x[0] + offset);
        a3 += f3[0] * (x[0] + offset);
        break;
    default:
        break;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* sum over i < n of f[i] * (x[i] + offset), added to acc. */
static int32_t dot1(const int8_t *x, const int8_t *f, int32_t n, int32_t offset, int32_t acc)
{
    const int8_t *end4 = x + (n & ~(int32_t)3);
    const int8_t *end = x + n;
    while (x != end4) {
        acc += f[0] * (x[0] + offset) + f[1] * (x[1] + offset) + f[2] * (x[2] + offset) +
               f[3] * (x[3] + offset);
        x += 4;
        f += 4;
    }
    while (x != end) {
        acc += *f++ * (*x++ + offset);
    }
    return acc;
}

/* The valid kernel taps k0 .. k1 - 1 along one axis: those with 0 <= i0 + k * dil < size. */
static void tap_range(int32_t i0, int32_t dil, int32_t k, int32_t size, int32_t *k0, int32_t *k1)
{
    int32_t lo = 0;
    if (i0 < 0) {
        lo = (-i0 + dil - 1) / dil;
    }
    int32_t hi = k;
    if (i0 + (k - 1) * dil >= size) {
        hi = (size - i0 + dil - 1) / dil; /* first k with i0 + k * dil >= size */
    }
    *k0 = lo;
    *k1 = hi > lo ? hi : lo;
}

/* The taps of one output position, shared by all its output channels. */
typedef struct {
    const int8_t *x; /* input at the first valid tap (ky0, kx0), channel 0 of group 0 */
    int32_t f_first; /* filter offset of that tap */
    int32_t rows;    /* valid kernel rows */
    int32_t x_row;   /* input step from one valid kernel row to the next */
    int32_t f_row;   /* filter step from one kernel row to the next */
    int32_t cols;    /* valid taps per row */
    int32_t x_col;   /* input step from one valid tap to the next in a row */
    int32_t run;     /* > 0: a row's valid taps are one contiguous run of this many bytes */
} taps_t;

void flt_conv_s8(const flt_conv_params_t *p, const int8_t *input, const int8_t *filter,
                 const int32_t *bias, int8_t *output)
{
    const int32_t groups = p->in_c / p->filter_in_c;
    const int32_t oc_per_group = p->out_c / groups;
    const int32_t fic = p->filter_in_c;
    const int32_t offset = p->input_offset;
    const int32_t f_stride = p->k_h * p->k_w * fic;
    const int32_t contiguous = p->dil_w == 1 && groups == 1;
    int8_t *out = output;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0;
            int32_t ky1;
            tap_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t kx0;
                int32_t kx1;
                tap_range(ix0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
                taps_t t;
                t.rows = ky1 - ky0;
                t.cols = kx1 - kx0;
                t.f_first = (ky0 * p->k_w + kx0) * fic;
                t.x_row = p->dil_h * p->in_w * p->in_c;
                t.f_row = p->k_w * fic;
                t.x_col = p->dil_w * p->in_c;
                t.run = contiguous ? t.cols * fic : 0;
                t.x = in_b;
                if (t.cols == 0) {
                    t.rows = 0; /* no valid tap: every output is its bias, requantized */
                } else if (t.rows > 0) {
                    t.x += ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w) * p->in_c;
                }
                for (int32_t g = 0; g < groups; ++g) {
                    const int8_t *x_g = t.x + g * fic;
                    const int32_t oc_end = (g + 1) * oc_per_group;
                    int32_t oc = g * oc_per_group;
                    /* Range: as in ../conv.c, at most k_h*k_w*filter_in_c <= FLT_MAX_ACC_TERMS
                     * products of magnitude <= 128 * 255 = 32640 per output, so every partial
                     * sum of them, in any order, has |acc| < 2^31 - 2^23; the generator checks
                     * that bound plus max|bias| stays <= 2^31 - 1. */
                    for (; oc + 4 <= oc_end; oc += 4) {
                        const int8_t *f = filter + oc * f_stride + t.f_first;
                        int32_t acc[4] = {0, 0, 0, 0};
                        const int8_t *xr = x_g;
                        for (int32_t r = 0; r < t.rows; ++r) {
                            if (t.run > 0) {
                                dot4(xr, f, f_stride, t.run, offset, acc);
                            } else {
                                const int8_t *xc = xr;
                                for (int32_t c = 0; c < t.cols; ++c) {
                                    dot4(xc, f + c * fic, f_stride, fic, offset, acc);
                                    xc += t.x_col;
                                }
                            }
                            xr += t.x_row;
                            f += t.f_row;
                        }
                        *out++ = conv_out(p, bias, oc, acc[0]);
                        *out++ = conv_out(p, bias, oc + 1, acc[1]);
                        *out++ = conv_out(p, bias, oc + 2, acc[2]);
                        *out++ = conv_out(p, bias, oc + 3, acc[3]);
                    }
                    for (; oc < oc_end; ++oc) {
                        const int8_t *f = filter + oc * f_stride + t.f_first;
                        int32_t acc = 0;
                        const int8_t *xr = x_g;
                        for (int32_t r = 0; r < t.rows; ++r) {
                            if (t.run > 0) {
                                acc = dot1(xr, f, t.run, offset, acc);
                            } else {
                                const int8_t *xc = xr;
                                for (int32_t c = 0; c < t.cols; ++c) {
                                    acc = dot1(xc, f + c * fic, fic, offset, acc);
                                    xc += t.x_col;
                                }
                            }
                            xr += t.x_row;
                            f += t.f_row;
                        }
                        *out++ = conv_out(p, bias, oc, acc);
                    }
                }
            }
        }
    }
}
