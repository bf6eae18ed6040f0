/* flt_conv1d.c - see flt_conv1d.h. */
#include "train/flt_conv1d.h"

#include <stddef.h>

#include "train/flt_vec.h"

/* Valid taps [*lo, *hi) of the window starting at input position pos0 - pad_left:
 * tap k reads input row pos0 + k - pad_left, valid when it lies in [0, in_len). */
static void flt_conv1d_taps(uint32_t pos0, const flt_layer_t *ly, uint32_t in_len, uint32_t *lo,
                            uint32_t *hi)
{
    const uint32_t end = in_len + ly->pad_left; /* tap k valid iff pos0 + k < end */
    *lo = (pos0 < ly->pad_left) ? ly->pad_left - pos0 : 0u;
    *hi = (pos0 < end) ? end - pos0 : 0u;
    if (*hi > ly->kernel) {
        *hi = ly->kernel;
    }
    if (*lo > *hi) {
        *lo = *hi;
    }
}

/* Output positions whose window lies inside the input (no padding tap): [*t_full, *t_end). */
static void flt_conv1d_full(const flt_layer_t *ly, uint32_t in_len, uint32_t out_len,
                            uint32_t *t_full, uint32_t *t_end)
{
    *t_full = (ly->pad_left + ly->stride - 1u) / ly->stride;
    *t_end = 0u;
    if (in_len + ly->pad_left >= ly->kernel) {
        *t_end = (in_len + ly->pad_left - ly->kernel) / ly->stride + 1u;
        if (*t_end > out_len) {
            *t_end = out_len;
        }
    }
}

/* y[t][*] of one output position (any taps). */
static void flt_conv1d_forward_at(const flt_layer_t *layer, const float *w, const float *x,
                                  float *y, uint32_t t)
{
    const uint32_t in_ch = layer->in_ch;
    const uint32_t out_ch = layer->out_ch;
    const uint32_t in_len = layer->in_size / in_ch;
    const uint32_t w_per_filter = layer->kernel * in_ch;
    const float *b = w + (size_t)out_ch * w_per_filter;
    const int relu = layer->act == FLT_ACT_RELU;
    /* range: t*stride <= 2^12 * 2^12 for a checked layer */
    const uint32_t pos0 = t * layer->stride;
    float *yt = y + (size_t)t * out_ch;
    uint32_t lo;
    uint32_t hi;
    uint32_t n;
    uint32_t o;
    const float *xs;
    const float *ws;
    flt_conv1d_taps(pos0, layer, in_len, &lo, &hi);
    n = (hi - lo) * in_ch;
    if (n == 0u) { /* no valid tap: the sum is empty, +0.0f */
        for (o = 0u; o < out_ch; ++o) {
            yt[o] = flt_vec_bias_act(0.0f, b[o], relu);
        }
        return;
    }
    xs = x + (size_t)(pos0 + lo - layer->pad_left) * in_ch;
    ws = w + (size_t)lo * in_ch;
    flt_vec_affine(ws, w_per_filter, xs, n, b, out_ch, relu, yt);
}

void flt_conv1d_forward(const flt_layer_t *layer, const float *w, const float *x, float *y)
{
    const uint32_t in_ch = layer->in_ch;
    const uint32_t out_ch = layer->out_ch;
    const uint32_t in_len = layer->in_size / in_ch;
    const uint32_t out_len = layer->out_size / out_ch;
    const uint32_t w_per_filter = layer->kernel * in_ch;
    const size_t x_step = (size_t)layer->stride * in_ch; /* window start, t -> t + 1 */
    const float *b = w + (size_t)out_ch * w_per_filter;
    const int relu = layer->act == FLT_ACT_RELU;
    uint32_t t_full;
    uint32_t t_end;
    uint32_t t = 0u;
    flt_conv1d_full(layer, in_len, out_len, &t_full, &t_end);
    while (t < out_len) {
        if (t >= t_full && t + 1u < t_end && out_ch % 4u == 0u) {
            /* two full windows times four filters per walk: each weight and each input
             * loaded once for two sums */
            const float *xs = x + (size_t)t * x_step - (size_t)layer->pad_left * in_ch;
            float *y0 = y + (size_t)t * out_ch;
            float *y1 = y0 + out_ch;
            uint32_t o;
            for (o = 0u; o < out_ch; o += 4u) {
                float acc[8];
                uint32_t q;
                flt_vec_dot4x2(w + (size_t)o * w_per_filter, w_per_filter, xs, x_step, w_per_filter,
                               acc);
                for (q = 0u; q < 4u; ++q) {
                    y0[o + q] = flt_vec_bias_act(acc[2u * q], b[o + q], relu);
                    y1[o + q] = flt_vec_bias_act(acc[2u * q + 1u], b[o + q], relu);
                }
            }
            t += 2u;
        } else {
            flt_conv1d_forward_at(layer, w, x, y, t);
            t += 1u;
        }
    }
}

/* One position t whose window has padding taps: adds d * (its valid input rows) to the
 * filter gradient g when d != 0 and returns the bias gradient gbo + d (gbo when d == 0). */
static float flt_conv1d_edge_grad(const flt_layer_t *layer, uint32_t in_len, const float *x,
                                  float d, uint32_t t, float *g, float gbo)
{
    uint32_t lo;
    uint32_t hi;
    if (d == 0.0f) {
        return gbo;
    }
    flt_conv1d_taps(t * layer->stride, layer, in_len, &lo, &hi);
    if (hi > lo) {
        flt_vec_axpy(g + (size_t)lo * layer->in_ch, d,
                     x + (size_t)(t * layer->stride + lo - layer->pad_left) * layer->in_ch,
                     (hi - lo) * layer->in_ch);
    }
    return gbo + d;
}

void flt_conv1d_backward(const flt_layer_t *layer, const float *w, const float *x, const float *dz,
                         float *gw, float *dx, int accumulate)
{
    const uint32_t in_ch = layer->in_ch;
    const uint32_t out_ch = layer->out_ch;
    const uint32_t in_len = layer->in_size / in_ch;
    const uint32_t out_len = layer->out_size / out_ch;
    const uint32_t w_per_filter = layer->kernel * in_ch;
    const uint32_t n_w = out_ch * w_per_filter;
    const size_t x_step = (size_t)layer->stride * in_ch; /* window start, t -> t + 1 */
    float *gb = gw + n_w;
    uint32_t t_full;
    uint32_t t_end;
    uint32_t f0;
    uint32_t f1;
    uint32_t t;
    uint32_t o;
    uint32_t i;

    flt_conv1d_full(layer, in_len, out_len, &t_full, &t_end);
    if (!accumulate) {
        for (i = 0u; i < n_w + out_ch; ++i) {
            gw[i] = 0.0f;
        }
    }
    /* the full windows are [f0, f1); the positions before and after them have padding taps */
    f0 = (t_full < out_len) ? t_full : out_len;
    f1 = (t_end > f0) ? t_end : f0;
    /* filter by filter: the positions t with dz[t][o] != 0, ascending, each adding dz times
     * its input window; full windows go in fours through one walk over the gradient */
    for (o = 0u; o < out_ch; ++o) {
        float *g = gw + (size_t)o * w_per_filter;
        const float *dzt = dz + (size_t)f0 * out_ch + o;
        const float *xt = x + (size_t)f0 * x_step - (size_t)layer->pad_left * in_ch;
        float gbo = gb[o];
        float dq[4];
        const float *xq[4];
        uint32_t nq = 0u;
        uint32_t q;
        for (t = 0u; t < f0; ++t) {
            gbo = flt_conv1d_edge_grad(layer, in_len, x, dz[(size_t)t * out_ch + o], t, g, gbo);
        }
        for (t = f0; t < f1; ++t) {
            const float d = *dzt;
            if (d != 0.0f) {
                gbo = gbo + d;
                dq[nq] = d;
                xq[nq] = xt;
                nq += 1u;
                if (nq == 4u) {
                    flt_vec_axpy4(g, dq, xq, w_per_filter);
                    nq = 0u;
                }
            }
            dzt += out_ch;
            xt += x_step;
        }
        for (q = 0u; q < nq; ++q) {
            flt_vec_axpy(g, dq[q], xq[q], w_per_filter);
        }
        for (t = f1; t < out_len; ++t) {
            gbo = flt_conv1d_edge_grad(layer, in_len, x, dz[(size_t)t * out_ch + o], t, g, gbo);
        }
        gb[o] = gbo;
    }

    if (dx == NULL) {
        return;
    }
    for (i = 0u; i < layer->in_size; ++i) {
        dx[i] = 0.0f;
    }
    for (t = 0u; t < out_len; ++t) {
        const uint32_t pos0 = t * layer->stride;
        const float *dzt = dz + (size_t)t * out_ch;
        uint32_t lo;
        uint32_t hi;
        float *dxs;
        flt_conv1d_taps(pos0, layer, in_len, &lo, &hi);
        if (hi == lo) {
            continue;
        }
        dxs = dx + (size_t)(pos0 + lo - layer->pad_left) * in_ch;
        for (o = 0u; o < out_ch; ++o) {
            if (dzt[o] != 0.0f) {
                flt_vec_axpy(dxs, dzt[o], w + (size_t)o * w_per_filter + (size_t)lo * in_ch,
                             (hi - lo) * in_ch);
            }
        }
    }
}
