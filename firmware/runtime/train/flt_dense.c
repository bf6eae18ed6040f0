/* flt_dense.c - see flt_dense.h. */
#include "train/flt_dense.h"

#include <stddef.h>

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
        const uint32_t n_in = head->layers[l].in_size;
        const uint32_t n_out = head->layers[l].out_size;
        const int relu = head->layers[l].act == FLT_ACT_RELU;
        const float *b = w + (size_t)n_in * n_out;
        uint32_t j;
        for (j = 0u; j < n_out; ++j) {
            const float *row = w + (size_t)j * n_in;
            float acc = row[0] * in[0];
            uint32_t k;
            for (k = 1u; k < n_in; ++k) {
                acc = acc + row[k] * in[k];
            }
            acc = acc + b[j];
            out[j] = (relu && !(acc > 0.0f)) ? 0.0f : acc;
        }
        w = b + n_out;
        in = out;
        out += n_out;
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
     * layer l-1's output (offsets computed from the end, no per-layer head re-check) */
    p_off = sz.n_params;
    a_off = sz.n_acts - last->out_size;
    for (l = head->n_layers; l-- > 0u;) {
        const uint32_t n_in = head->layers[l].in_size;
        const uint32_t n_out = head->layers[l].out_size;
        const float *w;
        float *gw;
        float *gb;
        const float *in;
        uint32_t k;
        p_off -= FLT_DENSE_PARAMS(n_in, n_out);
        if (l > 0u) {
            a_off -= n_in; /* layer l-1 has out_size == n_in */
        }
        w = params + p_off;
        gw = grad + p_off;
        gb = gw + (size_t)n_in * n_out;
        in = (l == 0u) ? x : acts + a_off;
        for (j = 0u; j < n_out; ++j) {
            float *grow = gw + (size_t)j * n_in;
            const float dj = d[j];
            if (accumulate) {
                for (k = 0u; k < n_in; ++k) {
                    grow[k] = grow[k] + dj * in[k];
                }
                gb[j] = gb[j] + dj;
            } else {
                for (k = 0u; k < n_in; ++k) {
                    grow[k] = dj * in[k];
                }
                gb[j] = dj;
            }
        }
        if (l > 0u) {
            /* dL/da_{l-1}: sequential sum over j, started from the j = 0 product */
            const int relu_prev = head->layers[l - 1u].act == FLT_ACT_RELU;
            float *tmp;
            for (k = 0u; k < n_in; ++k) {
                dn[k] = w[k] * d[0];
            }
            for (j = 1u; j < n_out; ++j) {
                const float *row = w + (size_t)j * n_in;
                const float dj = d[j];
                for (k = 0u; k < n_in; ++k) {
                    dn[k] = dn[k] + row[k] * dj;
                }
            }
            if (relu_prev) {
                for (k = 0u; k < n_in; ++k) {
                    dn[k] = (in[k] > 0.0f) ? dn[k] : 0.0f;
                }
            }
            tmp = d;
            d = dn;
            dn = tmp;
        }
    }
    return FLT_OK;
}
