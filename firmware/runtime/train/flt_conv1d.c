/* flt_conv1d.c - see flt_conv1d.h. */
#include "train/flt_conv1d.h"

#include <stddef.h>

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

void flt_conv1d_forward(const flt_layer_t *layer, const float *w, const float *x, float *y)
{
    const uint32_t in_ch = layer->in_ch;
    const uint32_t out_ch = layer->out_ch;
    const uint32_t in_len = layer->in_size / in_ch;
    const uint32_t out_len = layer->out_size / out_ch;
    const uint32_t w_per_filter = layer->kernel * in_ch;
    const float *b = w + (size_t)out_ch * w_per_filter;
    const int relu = layer->act == FLT_ACT_RELU;
    uint32_t t;
    for (t = 0u; t < out_len; ++t) {
        /* range: t*stride <= 2^12 * 2^12 for a checked layer */
        const uint32_t pos0 = t * layer->stride;
        uint32_t lo;
        uint32_t hi;
        uint32_t n;
        uint32_t o;
        const float *xs;
        flt_conv1d_taps(pos0, layer, in_len, &lo, &hi);
        n = (hi - lo) * in_ch;
        xs = (n != 0u) ? x + (size_t)(pos0 + lo - layer->pad_left) * in_ch : x;
        for (o = 0u; o < out_ch; ++o) {
            const float *ws = w + (size_t)o * w_per_filter + (size_t)lo * in_ch;
            float acc = 0.0f;
            uint32_t i;
            if (n != 0u) {
                acc = ws[0] * xs[0];
                for (i = 1u; i < n; ++i) {
                    acc = acc + ws[i] * xs[i];
                }
            }
            acc = acc + b[o];
            y[(size_t)t * out_ch + o] = (relu && !(acc > 0.0f)) ? 0.0f : acc;
        }
    }
}

void flt_conv1d_backward(const flt_layer_t *layer, const float *w, const float *x, const float *dz,
                         float *gw, float *dx, int accumulate)
{
    const uint32_t in_ch = layer->in_ch;
    const uint32_t out_ch = layer->out_ch;
    const uint32_t kernel = layer->kernel;
    const uint32_t in_len = layer->in_size / in_ch;
    const uint32_t out_len = layer->out_size / out_ch;
    const uint32_t w_per_filter = kernel * in_ch;
    float *gb = gw + (size_t)out_ch * w_per_filter;
    uint32_t o;
    uint32_t t;
    uint32_t k;
    uint32_t c;

    for (o = 0u; o < out_ch; ++o) {
        float s = dz[o];
        for (t = 1u; t < out_len; ++t) {
            s = s + dz[(size_t)t * out_ch + o];
        }
        gb[o] = accumulate ? gb[o] + s : s;
    }

    for (k = 0u; k < kernel; ++k) {
        /* outputs t whose tap k is valid: pad_left <= t*stride + k < in_len + pad_left */
        uint32_t t_lo = 0u;
        uint32_t t_hi = 0u;
        const uint32_t end = in_len + layer->pad_left;
        if (k < layer->pad_left) {
            t_lo = (layer->pad_left - k + layer->stride - 1u) / layer->stride;
        }
        if (k < end) {
            t_hi = (end - k + layer->stride - 1u) / layer->stride;
        }
        if (t_hi > out_len) {
            t_hi = out_len;
        }
        for (o = 0u; o < out_ch; ++o) {
            float *g = gw + (size_t)o * w_per_filter + (size_t)k * in_ch;
            for (c = 0u; c < in_ch; ++c) {
                float s = 0.0f;
                for (t = t_lo; t < t_hi; ++t) {
                    const float p =
                        dz[(size_t)t * out_ch + o] *
                        x[(size_t)(t * layer->stride + k - layer->pad_left) * in_ch + c];
                    s = (t == t_lo) ? p : s + p;
                }
                g[c] = accumulate ? g[c] + s : s;
            }
        }
    }

    if (dx == NULL) {
        return;
    }
    for (c = 0u; c < layer->in_size; ++c) {
        dx[c] = 0.0f;
    }
    for (t = 0u; t < out_len; ++t) {
        const uint32_t pos0 = t * layer->stride;
        uint32_t lo;
        uint32_t hi;
        flt_conv1d_taps(pos0, layer, in_len, &lo, &hi);
        for (k = lo; k < hi; ++k) {
            float *dxr = dx + (size_t)(pos0 + k - layer->pad_left) * in_ch;
            for (o = 0u; o < out_ch; ++o) {
                const float d = dz[(size_t)t * out_ch + o];
                const float *wr = w + (size_t)o * w_per_filter + (size_t)k * in_ch;
                for (c = 0u; c < in_ch; ++c) {
                    dxr[c] = dxr[c] + wr[c] * d;
                }
            }
        }
    }
}
