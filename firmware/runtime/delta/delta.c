/* delta.c - see delta.h for the contract and the exact arithmetic. */
#include "delta.h"

#include <float.h>

#include "core/flt_bits.h"

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "fltiny delta needs FLT_EVAL_METHOD == 0 (float arithmetic in float precision)"
#endif

#if (32 % FLT_DELTA_RADIX_BITS) != 0 || FLT_DELTA_RADIX_BITS > 16
#error "FLT_DELTA_RADIX_BITS must divide 32 and be at most 16"
#endif

#define FLT_DELTA_RADIX_SIZE (1u << FLT_DELTA_RADIX_BITS)
#define FLT_DELTA_RADIX_MASK (FLT_DELTA_RADIX_SIZE - 1u)

/* Magnitude key: unsigned order of key == order of |x| for finite x. */
static uint32_t flt_mag_key(float x)
{
    return flt_f32_bits(x) & FLT_F32_ABS_MASK;
}

/* clamp(round_half_to_even(x), -qmax, qmax) for finite x and 1 <= qmax <= 127, integers
 * only after one subtraction. Clamping first is equivalent: every x >= qmax rounds to >= qmax.
 * For |x| < qmax the truncation t is exact and x - (float)t is exact (same binade or
 * smaller). */
static int8_t flt_round_clamp(float x, uint32_t qmax)
{
    int32_t t;
    float f;
    const float q = (float)qmax;
    if (x >= q) {
        return (int8_t)qmax;
    }
    if (x <= -q) {
        return (int8_t)(-(int32_t)qmax);
    }
    t = (int32_t)x;
    f = x - (float)t;
    if (f > 0.5f || (f == 0.5f && (t % 2) != 0)) {
        t += 1;
    } else if (f < -0.5f || (f == -0.5f && (t % 2) != 0)) {
        t -= 1;
    }
    return (int8_t)t;
}

uint32_t flt_delta_k_from_ppm(uint32_t n, uint32_t ppm)
{
    /* n * ppm < 2^32 * 2^32 fits uint64_t. */
    uint64_t k;
    if (n == 0u) {
        return 0u;
    }
    k = ((uint64_t)n * (uint64_t)ppm) / 1000000u;
    if (k < 1u) {
        k = 1u;
    }
    if (k > n) {
        k = n;
    }
    return (uint32_t)k;
}

uint32_t flt_delta_num_scales(uint32_t k, flt_quant_mode_t mode, uint32_t block_size)
{
    if (k == 0u) {
        return 0u;
    }
    if (mode == FLT_QUANT_TENSOR) {
        return 1u;
    }
    if (block_size == 0u) {
        return 0u;
    }
    /* k / block_size + (remainder != 0) cannot overflow: result <= k. */
    return k / block_size + ((k % block_size) != 0u ? 1u : 0u);
}

static flt_status_t flt_check_mode(flt_quant_mode_t mode, uint32_t block_size)
{
    if (mode == FLT_QUANT_TENSOR) {
        return FLT_OK;
    }
    if (mode == FLT_QUANT_BLOCK && block_size >= 1u && block_size <= FLT_DELTA_MAX_BLOCK) {
        return FLT_OK;
    }
    return FLT_ERR_ARG;
}

flt_status_t flt_delta_accumulate(const float *local, const float *global, const float *residual,
                                  float *acc, uint32_t n)
{
    uint32_t i;
    int nonfinite = 0;
    FLT_REQUIRE(n == 0u || (local != NULL && global != NULL && acc != NULL), FLT_ERR_ARG);
    for (i = 0; i < n; ++i) {
        float a = local[i] - global[i];
        if (residual != NULL) {
            a = a + residual[i];
        }
        acc[i] = a;
        if (flt_mag_key(a) >= FLT_F32_INF_BITS) {
            nonfinite = 1;
        }
    }
    return nonfinite ? FLT_ERR_NONFINITE : FLT_OK;
}

flt_status_t flt_delta_topk(const float *acc, uint32_t n, uint32_t k, uint32_t *indices)
{
    uint32_t hist[FLT_DELTA_RADIX_SIZE];
    uint32_t prefix = 0u;
    uint32_t mask = 0u;
    uint32_t remaining = k; /* rank of the threshold among the entries matching prefix */
    uint32_t i;
    uint32_t out;
    int shift;

    FLT_REQUIRE(k <= n, FLT_ERR_ARG);
    FLT_REQUIRE(n == 0u || acc != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(k == 0u || indices != NULL, FLT_ERR_ARG);
    for (i = 0; i < n; ++i) {
        if (flt_mag_key(acc[i]) >= FLT_F32_INF_BITS) {
            return FLT_ERR_NONFINITE;
        }
    }
    if (k == 0u) {
        return FLT_OK;
    }

    for (shift = 32 - FLT_DELTA_RADIX_BITS; shift >= 0; shift -= FLT_DELTA_RADIX_BITS) {
        uint32_t d;
        for (d = 0; d < FLT_DELTA_RADIX_SIZE; ++d) {
            hist[d] = 0u;
        }
        /* Range: each count <= n <= UINT32_MAX, one increment per entry. */
        for (i = 0; i < n; ++i) {
            uint32_t key = flt_mag_key(acc[i]);
            if ((key & mask) == prefix) {
                hist[(key >> shift) & FLT_DELTA_RADIX_MASK] += 1u;
            }
        }
        /* Walk digits from the largest down; 1 <= remaining <= sum(hist), so some digit
         * satisfies hist[d] >= remaining and the loop stops there. */
        d = FLT_DELTA_RADIX_MASK;
        while (hist[d] < remaining) {
            remaining -= hist[d]; /* stays >= 1 */
            d -= 1u;
        }
        prefix |= d << shift;
        mask |= FLT_DELTA_RADIX_MASK << shift;
    }

    /* prefix is the k-th largest key; take all larger keys and the first `remaining` equal.
     * Range: out <= k because exactly k - remaining keys are larger than prefix. */
    out = 0u;
    for (i = 0; i < n; ++i) {
        uint32_t key = flt_mag_key(acc[i]);
        if (key > prefix) {
            indices[out++] = i;
        } else if (key == prefix && remaining > 0u) {
            indices[out++] = i;
            remaining -= 1u;
        }
    }
    return out == k ? FLT_OK : FLT_ERR_STATE; /* FLT_ERR_STATE is unreachable */
}

uint32_t flt_delta_qmax_of_bits(uint32_t bits)
{
    return (bits >= 2u && bits <= 8u) ? (1u << (bits - 1u)) - 1u : 0u;
}

flt_status_t flt_delta_quantize(const float *acc, uint32_t n, const uint32_t *indices, uint32_t k,
                                flt_quant_mode_t mode, uint32_t block_size, int8_t *values,
                                float *scales)
{
    return flt_delta_quantize_q(acc, n, indices, k, mode, block_size, 127u, values, scales);
}

flt_status_t flt_delta_quantize_q(const float *acc, uint32_t n, const uint32_t *indices, uint32_t k,
                                  flt_quant_mode_t mode, uint32_t block_size, uint32_t qmax,
                                  int8_t *values, float *scales)
{
    uint32_t group;
    uint32_t start;
    uint32_t end;
    uint32_t j;
    FLT_TRY(flt_check_mode(mode, block_size));
    FLT_REQUIRE(k <= n, FLT_ERR_ARG);
    FLT_REQUIRE(qmax >= 1u && qmax <= 127u, FLT_ERR_ARG);
    if (k == 0u) {
        return FLT_OK;
    }
    FLT_REQUIRE(acc != NULL && indices != NULL && values != NULL && scales != NULL, FLT_ERR_ARG);
    for (j = 0; j < k; ++j) {
        FLT_REQUIRE(indices[j] < n, FLT_ERR_RANGE);
        FLT_REQUIRE(flt_mag_key(acc[indices[j]]) < FLT_F32_INF_BITS, FLT_ERR_NONFINITE);
    }
    group = (mode == FLT_QUANT_TENSOR) ? k : block_size;
    /* end = start + min(group, k - start) <= k: no overflow even for k near 2^32. */
    for (start = 0u; start < k; start = end) {
        uint32_t max_key = 0u;
        end = start + ((k - start < group) ? (k - start) : group);
        float scale;
        for (j = start; j < end; ++j) {
            uint32_t key = flt_mag_key(acc[indices[j]]);
            if (key > max_key) {
                max_key = key;
            }
        }
        scale = flt_f32_from_bits(max_key) / (float)qmax;
        for (j = start; j < end; ++j) {
            values[j] =
                (scale == 0.0f) ? (int8_t)0 : flt_round_clamp(acc[indices[j]] / scale, qmax);
        }
        scales[(mode == FLT_QUANT_TENSOR) ? 0u : start / block_size] = scale;
    }
    return FLT_OK;
}

flt_status_t flt_delta_check(const flt_sparse_delta_t *d)
{
    uint32_t j;
    uint32_t ns;
    FLT_REQUIRE(d != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_check_mode(d->mode, d->block_size));
    FLT_REQUIRE(d->mode == FLT_QUANT_BLOCK || d->block_size == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(d->k <= d->n, FLT_ERR_ARG);
    ns = flt_delta_num_scales(d->k, d->mode, d->block_size);
    FLT_REQUIRE(d->k == 0u || (d->indices != NULL && d->values != NULL && d->scales != NULL),
                FLT_ERR_ARG);
    for (j = 0; j < d->k; ++j) {
        FLT_REQUIRE(d->indices[j] < d->n, FLT_ERR_RANGE);
        FLT_REQUIRE(j == 0u || d->indices[j] > d->indices[j - 1u], FLT_ERR_RANGE);
        FLT_REQUIRE(d->values[j] >= -127, FLT_ERR_RANGE);
    }
    for (j = 0; j < ns; ++j) {
        uint32_t bits = flt_f32_bits(d->scales[j]);
        FLT_REQUIRE((bits & FLT_F32_ABS_MASK) < FLT_F32_INF_BITS, FLT_ERR_NONFINITE);
        FLT_REQUIRE((bits & ~FLT_F32_ABS_MASK) == 0u, FLT_ERR_RANGE);
    }
    return FLT_OK;
}

static float flt_scale_of(const flt_sparse_delta_t *d, uint32_t j)
{
    return d->scales[(d->mode == FLT_QUANT_TENSOR) ? 0u : j / d->block_size];
}

flt_status_t flt_delta_compress(const flt_delta_config_t *cfg, const float *local,
                                const float *global, float *work, uint32_t n,
                                flt_sparse_delta_t *out)
{
    uint32_t j;
    uint32_t i;
    FLT_REQUIRE(cfg != NULL && out != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_check_mode(cfg->mode, cfg->block_size));
    FLT_REQUIRE(cfg->k <= n && cfg->qmax <= 127u, FLT_ERR_ARG);
    FLT_TRY(flt_delta_accumulate(local, global, cfg->error_feedback ? work : NULL, work, n));
    FLT_TRY(flt_delta_topk(work, n, cfg->k, out->indices));
    FLT_TRY(flt_delta_quantize_q(work, n, out->indices, cfg->k, cfg->mode, cfg->block_size,
                                 cfg->qmax != 0u ? cfg->qmax : 127u, out->values, out->scales));
    out->n = n;
    out->k = cfg->k;
    out->mode = cfg->mode;
    out->block_size = (cfg->mode == FLT_QUANT_BLOCK) ? cfg->block_size : 0u;
    if (cfg->error_feedback) {
        for (j = 0; j < out->k; ++j) {
            uint32_t idx = out->indices[j];
            float sent = (float)out->values[j] * flt_scale_of(out, j);
            work[idx] = work[idx] - sent;
        }
    } else {
        for (i = 0; i < n; ++i) {
            work[i] = 0.0f;
        }
    }
    return FLT_OK;
}

flt_status_t flt_delta_dequantize(const flt_sparse_delta_t *d, float *dense, uint32_t n)
{
    uint32_t i;
    uint32_t j;
    FLT_TRY(flt_delta_check(d));
    FLT_REQUIRE(d->n == n, FLT_ERR_SHAPE);
    FLT_REQUIRE(n == 0u || dense != NULL, FLT_ERR_ARG);
    for (i = 0; i < n; ++i) {
        dense[i] = 0.0f;
    }
    for (j = 0; j < d->k; ++j) {
        dense[d->indices[j]] = (float)d->values[j] * flt_scale_of(d, j);
    }
    return FLT_OK;
}

flt_status_t flt_delta_apply(const flt_sparse_delta_t *d, float *params, uint32_t n)
{
    uint32_t j;
    FLT_TRY(flt_delta_check(d));
    FLT_REQUIRE(d->n == n, FLT_ERR_SHAPE);
    FLT_REQUIRE(n == 0u || params != NULL, FLT_ERR_ARG);
    for (j = 0; j < d->k; ++j) {
        float step = (float)d->values[j] * flt_scale_of(d, j);
        params[d->indices[j]] = params[d->indices[j]] + step;
    }
    return FLT_OK;
}
