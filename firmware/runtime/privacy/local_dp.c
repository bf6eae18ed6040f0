/* local_dp.c - see local_dp.h. */
#include "local_dp.h"

#include "core/flt_bytes.h"
#include "crypto/chacha20.h"
#include "crypto/hkdf.h"
#include "train/flt_math.h"

#define INFO_LABEL "fltiny ldp"
#define INFO_LABEL_LEN 10u

typedef struct {
    flt_chacha20_t ks;
    float spare; /* the second draw of the last accepted pair */
    int has_spare;
} gauss_t;

static flt_status_t gauss_init(gauss_t *g, const uint8_t key[FLT_LDP_KEY_SIZE], uint32_t nonce)
{
    uint8_t info[INFO_LABEL_LEN + 4u];
    uint8_t stream_key[FLT_CHACHA20_KEY_SIZE];
    static const uint8_t zero_nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    flt_bytes_copy(info, (const uint8_t *)INFO_LABEL, INFO_LABEL_LEN);
    flt_le_put32(info + INFO_LABEL_LEN, nonce);
    FLT_TRY(flt_hkdf(NULL, 0u, key, FLT_LDP_KEY_SIZE, info, sizeof info, stream_key,
                     sizeof stream_key));
    flt_chacha20_init(&g->ks, stream_key, zero_nonce, 0u);
    for (uint32_t i = 0; i < sizeof stream_key; ++i) {
        stream_key[i] = 0u;
    }
    g->spare = 0.0f;
    g->has_spare = 0;
    return FLT_OK;
}

/* a uniform float in (-1, 1) from the top 24 bits of one keystream word */
static flt_status_t uniform(gauss_t *g, float *u)
{
    uint32_t r;
    FLT_TRY(flt_chacha20_u32(&g->ks, &r));
    *u = ((float)((int32_t)(r >> 8) - 8388608) + 0.5f) / 8388608.0f;
    return FLT_OK;
}

static flt_status_t gauss_next(gauss_t *g, float *out)
{
    if (g->has_spare) {
        g->has_spare = 0;
        *out = g->spare;
        return FLT_OK;
    }
    for (;;) { /* accepts a pair with probability pi / 4 */
        float a, b;
        FLT_TRY(uniform(g, &a));
        FLT_TRY(uniform(g, &b));
        const float s = a * a + b * b;
        if (s >= 1.0f || s == 0.0f) {
            continue;
        }
        const float f = flt_sqrtf((-2.0f * flt_logf(s)) / s);
        *out = a * f;
        g->spare = b * f;
        g->has_spare = 1;
        return FLT_OK;
    }
}

flt_status_t flt_ldp_gaussians(const uint8_t key[FLT_LDP_KEY_SIZE], uint32_t nonce, float *out,
                               uint32_t n)
{
    gauss_t g;
    FLT_REQUIRE(key != NULL && (out != NULL || n == 0u), FLT_ERR_ARG);
    FLT_TRY(gauss_init(&g, key, nonce));
    flt_status_t s = FLT_OK;
    for (uint32_t i = 0; i < n && s == FLT_OK; ++i) {
        s = gauss_next(&g, &out[i]);
    }
    flt_chacha20_wipe(&g.ks);
    return s;
}

flt_status_t flt_ldp_privatize(const float *params, const float *global, uint32_t n, float clip,
                               float noise, const uint8_t key[FLT_LDP_KEY_SIZE], uint32_t nonce,
                               float *out, float *norm)
{
    FLT_REQUIRE(params != NULL && global != NULL && key != NULL && out != NULL && norm != NULL,
                FLT_ERR_ARG);
    FLT_REQUIRE(flt_isfinite(clip) && clip > 0.0f, FLT_ERR_RANGE);
    FLT_REQUIRE(flt_isfinite(noise) && noise >= 0.0f, FLT_ERR_RANGE);
    float sq = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
        const float u = params[i] - global[i];
        sq = sq + u * u;
    }
    const float l2 = flt_sqrtf(sq);
    FLT_REQUIRE(flt_isfinite(l2), FLT_ERR_NONFINITE);
    const float s = l2 > clip ? clip / l2 : 1.0f;
    const float sigma = noise * clip;
    gauss_t g;
    FLT_TRY(gauss_init(&g, key, nonce));
    flt_status_t st = FLT_OK;
    for (uint32_t i = 0; i < n; ++i) {
        float z;
        st = gauss_next(&g, &z);
        if (st != FLT_OK) { /* 2^32 keystream blocks: unreachable for any head */
            break;
        }
        const float u = params[i] - global[i];
        out[i] = global[i] + (u * s + sigma * z);
    }
    flt_chacha20_wipe(&g.ks);
    FLT_TRY(st);
    *norm = l2;
    return FLT_OK;
}
