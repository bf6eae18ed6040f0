/* flt_dense.c - see flt_dense.h. */
#include "train/flt_dense.h"

#include <stddef.h>

#include "train/flt_conv1d.h"
#include "train/flt_gap1d.h"

void flt_dense_layer_forward(const flt_layer_t *layer, const float *w, const float *x, float *y)
{
    const uint32_t n_in = layer->in_size;
    const uint32_t n_out = layer->out_size;
    const int relu = layer->act == FLT_ACT_RELU;
    const float *b = w + (size_t)n_in * n_out;
    uint32_t j;
    for (j = 0u; j < n_out; ++j) {
        const float *row = w + (size_t)j * n_in;
        float acc = row[0] * x[0];
        uint32_t k;
        for (k = 1u; k < n_in; ++k) {
            acc = acc + row[k] * x[k];
        }
        acc = acc + b[j];
        y[j] = (relu && !(acc > 0.0f)) ? 0.0f : acc;
    }
}

void flt_dense_layer_backward(const flt_layer_t *layer, const float *w, const float *x,
                              const float *dz, float *gw, float *dx, int accumulate)
{
    const uint32_t n_in = layer->in_size;
    const uint32_t n_out = layer->out_size;
    float *gb = gw + (size_t)n_in * n_out;
    uint32_t j;
    uint32_t k;
    for (j = 0u; j < n_out; ++j) {
        float *grow = gw + (size_t)j * n_in;
        const float dj = dz[j];
        if (accumulate) {
            for (k = 0u; k < n_in; ++k) {
                grow[k] = grow[k] + dj * x[k];
            }
            gb[j] = gb[j] + dj;
        } else {
            for (k = 0u; k < n_in; ++k) {
                grow[k] = dj * x[k];
            }
            gb[j] = dj;
        }
    }
    if (dx == NULL) {
        return;
    }
    /* dL/dx: sequential sum over j, started from the j = 0 product */
    for (k = 0u; k < n_in; ++k) {
        dx[k] = w[k] * dz[0];
    }
    for (j = 1u; j < n_out; ++j) {
        const float *row = w + (size_t)j * n_in;
        const float dj = dz[j];
        for (k = 0u; k < n_in; ++k) {
            dx[k] = dx[k] + row[k] * dj;
        }
    }
}

flt_status_t flt_dense_forward(const flt_head_t *head, const float *params, const float *x,
                               float *acts, uint32_t acts_len)
{
    flt_train_sizes_t sz;
    uint32_t l;
    const float *w = params;
    const float *in = x;
    float *out = acts;
    FLT_REQUIRE(params != NULL && x != NULL && acts != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_sizes(head, 0u, &sz));
    FLT_REQUIRE(acts_len >= sz.n_acts, FLT_ERR_NOMEM);
    for (l = 0u; l < head->n_layers; ++l) {
        const flt_layer_t *ly = &head->layers[l];
        switch (ly->kind) {
        case FLT_LAYER_CONV1D:
            flt_conv1d_forward(ly, w, in, out);
            break;
        case FLT_LAYER_GAP1D:
            flt_gap1d_forward(ly, in, out);
            break;
        default: /* FLT_LAYER_DENSE: flt_head_check admits no other kind */
            flt_dense_layer_forward(ly, w, in, out);
            break;
        }
        w += flt_layer_n_params(ly);
        in = out;
        out += ly->out_size;
    }
    return FLT_OK;
}

flt_status_t flt_dense_backward(const flt_head_t *head, const float *params, const float *x,
                                const float *acts, const float *dout, float *grad,
                                uint32_t grad_len, float *scratch, uint32_t scratch_len,
                                int accumulate)
{
    flt_train_sizes_t sz;
    uint32_t l;
    uint32_t j;
    float *d;
    float *dn;
    const flt_layer_t *last;
    const float *a_last;
    uint32_t p_off;
    uint32_t a_off;
    FLT_REQUIRE(params != NULL && x != NULL && acts != NULL && dout != NULL && grad != NULL &&
                    scratch != NULL,
                FLT_ERR_ARG);
    FLT_TRY(flt_train_sizes(head, 0u, &sz));
    FLT_REQUIRE(grad_len >= sz.n_params, FLT_ERR_NOMEM);
    FLT_REQUIRE(scratch_len >= 2u * sz.max_width, FLT_ERR_NOMEM);

    d = scratch;
    dn = scratch + sz.max_width;
    last = &head->layers[head->n_layers - 1u];
    a_last = acts + (sz.n_acts - last->out_size);
    for (j = 0u; j < last->out_size; ++j) {
        const float dj = dout[j];
        d[j] = (last->act == FLT_ACT_RELU && !(a_last[j] > 0.0f)) ? 0.0f : dj;
    }

    /* walk the layers from the last one; p_off / a_off: start of layer l's params and of
     * layer l-1's output (offsets computed from the end, no per-layer head re-check).
     * d holds dL/dz of layer l (out_size <= max_width floats); dn receives dL/da of layer
     * l-1 (in_size == out_size of l-1 <= max_width floats) */
    p_off = sz.n_params;
    a_off = sz.n_acts - last->out_size;
    for (l = head->n_layers; l-- > 0u;) {
        const flt_layer_t *ly = &head->layers[l];
        const float *in;
        float *dx = (l > 0u) ? dn : NULL;
        p_off -= flt_layer_n_params(ly);
        if (l > 0u) {
            a_off -= ly->in_size; /* layer l-1 has out_size == in_size */
        }
        in = (l == 0u) ? x : acts + a_off;
        switch (ly->kind) {
        case FLT_LAYER_CONV1D:
            flt_conv1d_backward(ly, params + p_off, in, d, grad + p_off, dx, accumulate);
            break;
        case FLT_LAYER_GAP1D:
            if (dx != NULL) {
                flt_gap1d_backward(ly, d, dx);
            }
            break;
        default: /* FLT_LAYER_DENSE */
            flt_dense_layer_backward(ly, params + p_off, in, d, grad + p_off, dx, accumulate);
            break;
        }
        if (l > 0u) {
            float *tmp;
            if (head->layers[l - 1u].act == FLT_ACT_RELU) {
                for (j = 0u; j < ly->in_size; ++j) {
                    dn[j] = (in[j] > 0.0f) ? dn[j] : 0.0f;
                }
            }
            tmp = d;
            d = dn;
            dn = tmp;
        }
    }
    return FLT_OK;
}
