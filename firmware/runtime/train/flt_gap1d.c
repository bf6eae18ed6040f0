/* flt_gap1d.c - see flt_gap1d.h. */
#include "train/flt_gap1d.h"

#include <stddef.h>

void flt_gap1d_forward(const flt_layer_t *layer, const float *x, float *y)
{
    const uint32_t ch = layer->out_size;
    const uint32_t len = layer->in_size / ch;
    const float n = (float)len;
    uint32_t t;
    uint32_t c;
    /* channel by channel, the sum in a register (a strided walk down the column) */
    for (c = 0u; c < ch; ++c) {
        const float *p = x + c;
        float s = p[0];
        for (t = 1u; t < len; ++t) {
            p += ch;
            s = s + p[0];
        }
        y[c] = s / n;
    }
}

void flt_gap1d_backward(const flt_layer_t *layer, const float *dz, float *dx)
{
    const uint32_t ch = layer->out_size;
    const uint32_t len = layer->in_size / ch;
    const float n = (float)len;
    uint32_t t;
    uint32_t c;
    for (t = 0u; t < len; ++t) {
        float *row = dx + (size_t)t * ch;
        for (c = 0u; c < ch; ++c) {
            row[c] = dz[c] / n;
        }
    }
}

void flt_gap1d_backward_masked(const flt_layer_t *layer, const float *dz, const float *a, float *dx)
{
    const uint32_t ch = layer->out_size;
    const uint32_t len = layer->in_size / ch;
    const float n = (float)len;
    uint32_t t;
    uint32_t c;
    if (a == NULL) {
        flt_gap1d_backward(layer, dz, dx);
        return;
    }
    for (c = 0u; c < ch; ++c) {
        const float q = dz[c] / n; /* the value flt_gap1d_backward writes, divided once */
        for (t = 0u; t < len; ++t) {
            const size_t i = (size_t)t * ch + c;
            dx[i] = (a[i] > 0.0f) ? q : 0.0f;
        }
    }
}
