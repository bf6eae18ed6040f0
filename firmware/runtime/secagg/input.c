/* input.c - the round's shared index set and the quantizer of secure aggregation; see input.h. */
#include "input.h"

#include "core/flt_bits.h"
#include "core/flt_bytes.h"
#include "crypto/chacha20.h"
#include "crypto/secagg_mask.h"
#include "keys.h"

flt_status_t flt_secagg_index_set(uint32_t seed, uint32_t round, uint32_t n, uint32_t k,
                                  uint32_t *idx)
{
    FLT_REQUIRE(k >= 1u && k <= n && k <= FLT_SECAGG_MAX_VALUES, FLT_ERR_RANGE);
    FLT_REQUIRE(idx != NULL, FLT_ERR_ARG);
    static const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    uint8_t ikm[4];
    uint8_t key[32];
    flt_le_put32(ikm, seed);
    FLT_TRY(flt_secagg_derive(ikm, 4u, "indx", round, 0u, 0u, 1u, key, 32u));
    flt_chacha20_t ks;
    flt_chacha20_init(&ks, key, nonce, 0);
    uint32_t kept = 0;
    flt_status_t s = FLT_OK;
    /* n words of keystream: n < 2^32 words is 2^28 blocks, no counter wrap */
    for (uint32_t i = 0; i < n && kept < k && s == FLT_OK; ++i) {
        uint32_t r = 0;
        s = flt_chacha20_u32(&ks, &r);
        /* r < 2^32 and n - i <= 2^32 - 1: the product fits 64 bits; (k - kept) <= n - i, so
         * when every remaining index is needed the test always holds */
        if ((uint64_t)r * (uint64_t)(n - i) < ((uint64_t)(k - kept) << 32)) {
            idx[kept++] = i;
        }
    }
    flt_chacha20_wipe(&ks);
    return s;
}

flt_status_t flt_secagg_quantize(const float *delta, uint32_t n, const uint32_t *idx, uint32_t k,
                                 float scale, uint32_t qmax, uint32_t *out)
{
    FLT_REQUIRE(delta != NULL && (k == 0u || (idx != NULL && out != NULL)), FLT_ERR_ARG);
    FLT_REQUIRE(qmax <= (1u << 24), FLT_ERR_RANGE);
    FLT_REQUIRE(flt_f32_bits_finite(flt_f32_bits(scale)) && scale > 0.0f, FLT_ERR_RANGE);
    const float lim = (float)qmax;
    for (uint32_t j = 0; j < k; ++j) {
        FLT_REQUIRE(idx[j] < n, FLT_ERR_RANGE);
        float v = delta[idx[j]] * scale;
        if (!(v == v)) { /* NaN */
            v = 0.0f;
        }
        v = v > lim ? lim : (v < -lim ? -lim : v);
        /* |v| <= qmax <= 2^24: v +- 0.5 fits int32 */
        const int32_t q = (int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
        out[j] = (uint32_t)q;
    }
    return FLT_OK;
}
