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
    for (c = 0u; c < ch; ++c) {
        y[c] = x[c];
    }
    for (t = 1u; t < len; ++t) {
        const float *row = x + (size_t)t * ch;
        for (c = 0u; c < ch; ++c) {
            y[c] = y[c] + row[c];
        }
    }
    for (c = 0u; c < ch; ++c) {
        y[c] = y[c] / n;
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
