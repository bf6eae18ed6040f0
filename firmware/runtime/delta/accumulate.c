/* accumulate.c - see accumulate.h for the contract. */
#include "accumulate.h"

flt_status_t flt_accum_init(flt_accum_t *acc, double *sum, uint32_t n, uint32_t *indices,
                            int8_t *values, float *work, uint32_t k_max, float *scales,
                            uint32_t scales_max)
{
    uint32_t i;
    FLT_REQUIRE(acc != NULL && sum != NULL && indices != NULL && values != NULL && work != NULL &&
                    scales != NULL,
                FLT_ERR_ARG);
    FLT_REQUIRE(n != 0u && k_max != 0u && scales_max != 0u, FLT_ERR_ARG);
    for (i = 0; i < n; ++i) {
        sum[i] = 0.0;
    }
    acc->sum = sum;
    acc->n = n;
    acc->indices = indices;
    acc->values = values;
    acc->work = work;
    acc->scales = scales;
    acc->limits.n_max = n;
    acc->limits.k_max = k_max;
    acc->limits.scales_max = scales_max;
    acc->weight_sum = 0.0;
    acc->accepted = 0u;
    acc->rejected = 0u;
    return FLT_OK;
}

/* Decodes one payload into the scratch, dequantizes it into acc->work (float32, as
 * flt_delta_dequantize) and measures its squared norm. Touches nothing outside the scratch. */
static flt_status_t flt_accum_decode(flt_accum_t *acc, const uint8_t *buf, size_t len, uint32_t *k,
                                     double *sq_norm)
{
    flt_sparse_delta_t d;
    uint32_t j;
    double sq = 0.0;
    d.indices = acc->indices;
    d.values = acc->values;
    d.scales = acc->scales;
    FLT_TRY(flt_payload_decode(buf, len, &acc->limits, &d));
    FLT_REQUIRE(d.n == acc->n, FLT_ERR_SHAPE);
    if (d.mode == FLT_QUANT_TENSOR) {
        float s = (d.k > 0u) ? d.scales[0] : 0.0f;
        for (j = 0; j < d.k; ++j) {
            float v = (float)d.values[j] * s;
            acc->work[j] = v;
            sq += (double)v * (double)v;
        }
    } else {
        for (j = 0; j < d.k; ++j) {
            float v = (float)d.values[j] * d.scales[j / d.block_size];
            acc->work[j] = v;
            sq += (double)v * (double)v;
        }
    }
    /* q * scale overflows float32 only to +-inf (the scales are finite, |q| <= 127), and a
     * finite float squared is below 1.2e77, so sq is finite iff every value is */
    FLT_REQUIRE(sq - sq == 0.0, FLT_ERR_NONFINITE);
    *k = d.k;
    *sq_norm = sq;
    return FLT_OK;
}

static int flt_weight_ok(double w, flt_status_t *why)
{
    if (!(w == w) || w - w != 0.0) { /* NaN, or +-inf (inf - inf is NaN) */
        *why = FLT_ERR_NONFINITE;
        return 0;
    }
    if (w < 0.0 || w > FLT_ACCUM_MAX_WEIGHT) {
        *why = FLT_ERR_RANGE;
        return 0;
    }
    return 1;
}

flt_status_t flt_accum_add(flt_accum_t *acc, const uint8_t *const *data, const size_t *lens,
                           const double *weights, uint32_t count, int32_t *status, double *sq_norms)
{
    uint32_t i;
    FLT_REQUIRE(acc != NULL && acc->sum != NULL && acc->n != 0u, FLT_ERR_ARG);
    FLT_REQUIRE(count == 0u || (data != NULL && lens != NULL && status != NULL), FLT_ERR_ARG);
    for (i = 0; i < count; ++i) {
        flt_status_t st = FLT_OK;
        uint32_t k = 0u;
        uint32_t j;
        double sq = -1.0;
        double w = 0.0;
        if (weights != NULL && !flt_weight_ok(weights[i], &st)) {
            /* st says why */
        } else {
            st = flt_accum_decode(acc, data[i], lens[i], &k, &sq);
        }
        if (st == FLT_OK && weights != NULL) {
            const uint32_t *idx = acc->indices;
            const float *v = acc->work;
            double *sum = acc->sum;
            w = weights[i];
            /* indices are < n and strictly increasing (the decoder's rules) */
            for (j = 0; j < k; ++j) {
                sum[idx[j]] += w * (double)v[j];
            }
            acc->weight_sum += w;
            acc->accepted += 1u;
        } else if (st != FLT_OK) {
            sq = -1.0;
            acc->rejected += (weights != NULL) ? 1u : 0u;
        }
        status[i] = (int32_t)st;
        if (sq_norms != NULL) {
            sq_norms[i] = sq;
        }
    }
    return FLT_OK;
}
