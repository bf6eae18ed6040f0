#include "pooling.h"

#include "check_common.h"
#include "kernels_common.h"

flt_status_t flt_pool_prepare(const flt_pool_params_t *p)
{
    FLT_REQUIRE(p != 0, FLT_ERR_ARG);
    FLT_REQUIRE(p->batches > 0 && p->in_h > 0 && p->in_w > 0 && p->channels > 0 && p->out_h > 0 &&
                    p->out_w > 0 && p->f_h > 0 && p->f_w > 0,
                FLT_ERR_SHAPE);
    FLT_REQUIRE(p->stride_h > 0 && p->stride_w > 0 && p->pad_h >= 0 && p->pad_w >= 0, FLT_ERR_ARG);
    /* Sum bound for the average: f_h * f_w values of magnitude <= 128. */
    FLT_REQUIRE((int64_t)p->f_h * p->f_w <= (int64_t)1 << 23, FLT_ERR_RANGE);
    /* Every window must overlap the input: the first starts at -pad, the last at
     * (out - 1) * stride - pad. */
    FLT_REQUIRE(p->pad_h < p->f_h && p->pad_w < p->f_w, FLT_ERR_SHAPE);
    FLT_REQUIRE((int64_t)(p->out_h - 1) * p->stride_h - p->pad_h < p->in_h &&
                    (int64_t)(p->out_w - 1) * p->stride_w - p->pad_w < p->in_w,
                FLT_ERR_SHAPE);
    return flt_check_act(p->act_min, p->act_max);
}

/* The clipped window [*y0, *y1) x [*x0, *x1) of output (oy, ox), in input coordinates. */
static void window(const flt_pool_params_t *p, int32_t oy, int32_t ox, int32_t *y0, int32_t *y1,
                   int32_t *x0, int32_t *x1)
{
    const int32_t iy = oy * p->stride_h - p->pad_h;
    const int32_t ix = ox * p->stride_w - p->pad_w;
    *y0 = iy < 0 ? 0 : iy;
    *y1 = iy + p->f_h > p->in_h ? p->in_h : iy + p->f_h;
    *x0 = ix < 0 ? 0 : ix;
    *x1 = ix + p->f_w > p->in_w ? p->in_w : ix + p->f_w;
}

void flt_avg_pool_s8(const flt_pool_params_t *p, const int8_t *input, int8_t *output)
{
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * p->in_h * p->in_w * p->channels;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                int32_t y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                const int32_t count = (y1 - y0) * (x1 - x0); /* >= 1 after prepare */
                for (int32_t c = 0; c < p->channels; ++c) {
                    /* Range: count <= f_h * f_w <= 2^23 values of magnitude <= 128: |sum| <=
                     * 2^30. */
                    int32_t sum = 0;
                    for (int32_t y = y0; y < y1; ++y) {
                        for (int32_t x = x0; x < x1; ++x) {
                            sum += in_b[((int64_t)y * p->in_w + x) * p->channels + c];
                        }
                    }
                    /* C99 division truncates toward zero: adding +-count/2 first rounds to
                     * nearest with ties away from zero. */
                    const int32_t avg =
                        sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    output[(((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
                        flt_clamp_s8(avg, p->act_min, p->act_max);
                }
            }
        }
    }
}

void flt_max_pool_s8(const flt_pool_params_t *p, const int8_t *input, int8_t *output)
{
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * p->in_h * p->in_w * p->channels;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                int32_t y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                for (int32_t c = 0; c < p->channels; ++c) {
                    int32_t best = -128;
                    for (int32_t y = y0; y < y1; ++y) {
                        for (int32_t x = x0; x < x1; ++x) {
                            const int32_t v = in_b[((int64_t)y * p->in_w + x) * p->channels + c];
                            best = v > best ? v : best;
                        }
                    }
                    output[(((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
                        flt_clamp_s8(best, p->act_min, p->act_max);
                }
            }
        }
    }
}
