/* armv7em/conv.c - flt_conv_s8 for ARMv7E-M (Cortex-M4/M7): the reference arithmetic of
 * ../conv.c, its inner product done four channels at a time with SXTAB16 (two bytes
 * sign-extended and the input offset added in one instruction) + SMLAD, the output channels
 * in pairs that share each input load. Bit-exact: the same products are summed in int32 (SMLAD
 * wraps like the reference; the range argument below bounds it) and requantized by the same
 * kernels_common functions. The build uses this file instead of ../conv.c on boards whose core
 * is ARMv7E-M (fltiny.build.project); flt_conv_prepare is ../conv_prepare.c for both. */
#include <arm_acle.h>
#include <string.h>

#include "conv.h"

#include "check_common.h"
#include "kernels_common.h"

static inline int32_t load_s32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline int32_t ror8(int32_t v)
{
    const uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 8) | (u << 24));
}

/* sum over n channels of f[i] * (x[i] + offset); offset2 = offset in both halfwords. SXTAB16
 * sign-extends bytes 0 and 2 (or 1 and 3 after the rotation) and adds the offset to each
 * halfword; |x + offset| <= 255 fits the halfword. */
static inline int32_t dot_s8(const int8_t *x, const int8_t *f, int32_t n, int32_t offset2,
                             int32_t offset, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = load_s32(x + i);
        const int32_t fv = load_s32(f + i);
        acc = __smlad(__sxtab16(offset2, xv), __sxtb16(fv), acc);
        acc = __smlad(__sxtab16(offset2, ror8(xv)), __sxtb16(ror8(fv)), acc);
    }
    for (; i < n; ++i) {
        acc += (int32_t)f[i] * ((int32_t)x[i] + offset);
    }
    return acc;
}

/* dot_s8 for two filters f0, f1 over the same inputs: each input word is loaded and widened
 * once for both output channels. */
static inline void dot2_s8(const int8_t *x, const int8_t *f0, const int8_t *f1, int32_t n,
                           int32_t offset2, int32_t offset, int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = *acc0;
    int32_t a1 = *acc1;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = load_s32(x + i);
        const int32_t xe = __sxtab16(offset2, xv);
        const int32_t xo = __sxtab16(offset2, ror8(xv));
        const int32_t f0v = load_s32(f0 + i);
        const int32_t f1v = load_s32(f1 + i);
        a0 = __smlad(xe, __sxtb16(f0v), a0);
        a0 = __smlad(xo, __sxtb16(ror8(f0v)), a0);
        a1 = __smlad(xe, __sxtb16(f1v), a1);
        a1 = __smlad(xo, __sxtb16(ror8(f1v)), a1);
    }
    for (; i < n; ++i) {
        const int32_t xi = (int32_t)x[i] + offset;
        a0 += (int32_t)f0[i] * xi;
        a1 += (int32_t)f1[i] * xi;
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* Bias, requantization and clamping of one output, exactly as ../conv.c. */
static inline int8_t conv_out(const flt_conv_params_t *p, const int32_t *bias, int32_t oc,
                              int32_t acc)
{
    if (bias != 0) {
        acc += bias[oc];
    }
    acc = flt_multiply_by_quantized_multiplier(acc, p->multiplier[oc], (int)p->shift[oc]);
    acc += p->output_offset;
    return flt_clamp_s8(acc, p->act_min, p->act_max);
}

void flt_conv_s8(const flt_conv_params_t *p, const int8_t *input, const int8_t *filter,
                 const int32_t *bias, int8_t *output)
{
    const int32_t groups = p->in_c / p->filter_in_c;
    const int32_t oc_per_group = p->out_c / groups;
    const int32_t fic = p->filter_in_c;
    const int32_t offset = p->input_offset;
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xffffu) | ((uint32_t)offset << 16));
    const int32_t f_stride = p->k_h * p->k_w * fic;
    int8_t *out = output;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int32_t)b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                /* With dilation 1, the valid taps of a kernel row are kx0 .. kx1 - 1. */
                const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t kx1 = (ix0 + p->k_w > p->in_w) ? p->in_w - ix0 : p->k_w;
                int32_t oc = 0;
                if (groups == 1 && p->dil_w == 1) {
                    /* Contiguous taps, output channels in pairs sharing the input loads. */
                    for (; oc + 2 <= p->out_c; oc += 2) {
                        const int8_t *f0 = filter + oc * f_stride;
                        const int8_t *f1 = f0 + f_stride;
                        /* Range: as below, per output channel. */
                        int32_t acc0 = 0;
                        int32_t acc1 = 0;
                        for (int32_t ky = 0; ky < p->k_h && kx1 > kx0; ++ky) {
                            const int32_t iy = iy0 + ky * p->dil_h;
                            const int32_t tap = (ky * p->k_w + kx0) * fic;
                            if (iy < 0 || iy >= p->in_h) {
                                continue;
                            }
                            dot2_s8(in_b + (iy * p->in_w + ix0 + kx0) * fic, f0 + tap, f1 + tap,
                                    (kx1 - kx0) * fic, offset2, offset, &acc0, &acc1);
                        }
                        *out++ = conv_out(p, bias, oc, acc0);
                        *out++ = conv_out(p, bias, oc + 1, acc1);
                    }
                }
                for (; oc < p->out_c; ++oc) {
                    const int32_t g = oc / oc_per_group;
                    const int8_t *f_oc = filter + oc * f_stride;
                    /* Range: as in ../conv.c, |acc| <= FLT_MAX_ACC_TERMS * 32640 < 2^31 -
                     * 2^23; SMLAD sums the same products (each halfword product fits int32,
                     * |x + offset| <= 255 fits int16), so the int32 sum is the same. */
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = iy0 + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        if (p->dil_w == 1 && g == 0 && groups == 1) {
                            /* Contiguous taps: one dot product over the valid kx range. */
                            if (kx1 > kx0) {
                                acc = dot_s8(in_b + (iy * p->in_w + ix0 + kx0) * fic,
                                             f_oc + (ky * p->k_w + kx0) * fic, (kx1 - kx0) * fic,
                                             offset2, offset, acc);
                            }
                            continue;
                        }
                        for (int32_t kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = ix0 + kx * p->dil_w;
                            if (ix < 0 || ix >= p->in_w) {
                                continue;
                            }
                            acc =
                                dot_s8(in_b + (iy * p->in_w + ix) * p->in_c + g * fic,
                                       f_oc + (ky * p->k_w + kx) * fic, fic, offset2, offset, acc);
                        }
                    }
                    *out++ = conv_out(p, bias, oc, acc);
                }
            }
        }
    }
}
