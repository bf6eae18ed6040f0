/* flt_dense.c - see flt_dense.h. */
#include "train/flt_dense.h"

#include <stddef.h>

#include "train/flt_conv1d.h"
#include "train/flt_gap1d.h"
#include "train/flt_vec.h"

void flt_dense_layer_forward(const flt_layer_t *layer, const float *w, const float *x, float *y)
{
    const uint32_t n_in = layer->in_size;
    const uint32_t n_out = layer->out_size;
    const int relu = layer->act == FLT_ACT_RELU;
    const float *b = w + (size_t)n_in * n_out;
    flt_vec_affine(w, n_in, x, n_in, b, n_out, relu, y);
}

void flt_dense_layer_backward(const flt_layer_t *layer, const float *w, const float *x,
                              const float *dz, float *gw, float *dx, int accumulate)
{
    const uint32_t n_in = layer->in_size;
    const uint32_t n_out = layer->out_size;
    float *gb = gw + (size_t)n_in * n_out;
    float dq[4];
    float *gq[4];
    const float *wq[4];
    uint32_t nq = 0u;
    uint32_t q;
    uint32_t j;
    uint32_t k;
    /* weight gradient of the rows with dz_j != 0: stored (dz_j * x) or added (gW[j] +
     * dz_j * x), four rows per walk over x; rows with dz_j == 0 are stored as +0 or left */
    for (j = 0u; j < n_out; ++j) {
        const float d = dz[j];
        float *grow = gw + (size_t)j * n_in;
        if (!accumulate) {
            gb[j] = (d == 0.0f) ? 0.0f : d; /* +0, whatever the sign of a zero d */
            if (d == 0.0f) {
                for (k = 0u; k < n_in; ++k) {
                    grow[k] = 0.0f;
                }
            } else {
                flt_vec_scale(grow, d, x, n_in);
            }
        } else if (d != 0.0f) {
            gb[j] = gb[j] + d;
            dq[nq] = d;
            gq[nq] = grow;
            nq += 1u;
            if (nq == 4u) {
                flt_vec_axpy_rows4(gq, dq, x, n_in);
                nq = 0u;
            }
        }
    }
    for (q = 0u; q < nq; ++q) {
        flt_vec_axpy(gq[q], dq[q], x, n_in);
    }
    if (dx == NULL) {
        return;
    }
    /* dL/dx = +0, then + W[j] * dz_j for the rows j with dz_j != 0, ascending, four rows
     * per walk over dx (flt_vec_axpy4 adds them in order) */
    for (k = 0u; k < n_in; ++k) {
        dx[k] = 0.0f;
    }
    nq = 0u;
    for (j = 0u; j < n_out; ++j) {
        if (dz[j] != 0.0f) {
            dq[nq] = dz[j];
            wq[nq] = w + (size_t)j * n_in;
            nq += 1u;
            if (nq == 4u) {
                flt_vec_axpy4(dx, dq, wq, n_in);
                nq = 0u;
            }
        }
    }
    for (q = 0u; q < nq; ++q) {
        flt_vec_axpy(dx, dq[q], wq[q], n_in);
    }
}

flt_status_t flt_dense_forward(const flt_head_t *head, const float *params, const float *x,
                               float *acts, uint32_t acts_len)
{
    flt_train_sizes_t sz;
    FLT_REQUIRE(params != NULL && x != NULL && acts != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_sizes(head, 0u, &sz));
    FLT_REQUIRE(acts_len >= sz.n_acts, FLT_ERR_NOMEM);
    flt_head_forward_checked(head, params, x, acts);
    return FLT_OK;
}

void flt_head_forward_checked(const flt_head_t *head, const float *params, const float *x,
                              float *acts)
{
    uint32_t l;
    const float *w = params;
    const float *in = x;
    float *out = acts;
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
}

flt_status_t flt_dense_backward(const flt_head_t *head, const float *params, const float *x,
                                const float *acts, const float *dout, float *grad,
                                uint32_t grad_len, float *scratch, uint32_t scratch_len,
                                int accumulate)
{
    flt_train_sizes_t sz;
    FLT_REQUIRE(params != NULL && x != NULL && acts != NULL && dout != NULL && grad != NULL &&
                    scratch != NULL,
                FLT_ERR_ARG);
    FLT_TRY(flt_train_sizes(head, 0u, &sz));
    FLT_REQUIRE(grad_len >= sz.n_params, FLT_ERR_NOMEM);
    FLT_REQUIRE(scratch_len >= 2u * sz.max_width, FLT_ERR_NOMEM);
    flt_head_backward_checked(head, &sz, params, x, acts, dout, grad, scratch, accumulate);
    return FLT_OK;
}

void flt_head_backward_checked(const flt_head_t *head, const flt_train_sizes_t *sz,
                               const float *params, const float *x, const float *acts,
                               const float *dout, float *grad, float *scratch, int accumulate)
{
    uint32_t l;
    uint32_t j;
    float *d = scratch;
    float *dn = scratch + sz->max_width;
    const flt_layer_t *last = &head->layers[head->n_layers - 1u];
    const float *a_last = acts + (sz->n_acts - last->out_size);
    uint32_t p_off;
    uint32_t a_off;

    for (j = 0u; j < last->out_size; ++j) {
        const float dj = dout[j];
        d[j] = (last->act == FLT_ACT_RELU && !(a_last[j] > 0.0f)) ? 0.0f : dj;
    }

    /* walk the layers from the last one; p_off / a_off: start of layer l's params and of
     * layer l-1's output (offsets computed from the end, no per-layer head re-check).
     * d holds dL/dz of layer l (out_size <= max_width floats); dn receives dL/da of layer
     * l-1 (in_size == out_size of l-1 <= max_width floats) */
    p_off = sz->n_params;
    a_off = sz->n_acts - last->out_size;
    for (l = head->n_layers; l-- > 0u;) {
        const flt_layer_t *ly = &head->layers[l];
        const float *in;
        float *dx = (l > 0u) ? dn : NULL;
        int masked = 0;
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
                /* the previous layer's ReLU mask is applied while dx is written */
                masked = head->layers[l - 1u].act == FLT_ACT_RELU;
                flt_gap1d_backward_masked(ly, d, masked ? in : NULL, dx);
            }
            break;
        default: /* FLT_LAYER_DENSE */
            flt_dense_layer_backward(ly, params + p_off, in, d, grad + p_off, dx, accumulate);
            break;
        }
        if (l > 0u) {
            float *tmp;
            if (!masked && head->layers[l - 1u].act == FLT_ACT_RELU) {
                for (j = 0u; j < ly->in_size; ++j) {
                    dn[j] = (in[j] > 0.0f) ? dn[j] : 0.0f;
                }
            }
            tmp = d;
            d = dn;
            dn = tmp;
        }
    }
}
