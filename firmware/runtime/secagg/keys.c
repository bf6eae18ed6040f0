/* keys.c - the key schedule of secure aggregation; see keys.h. */
#include "keys.h"

#include "core/flt_bytes.h"
#include "crypto/chacha20.h"
#include "crypto/hkdf.h"
#include "crypto/secagg_mask.h"

static const uint8_t kSalt[] = "fltiny secagg v1"; /* 16 bytes, without the NUL */

flt_status_t flt_secagg_derive(const uint8_t *ikm, uint32_t ikm_len, const char label[4],
                               uint32_t a, uint32_t b, uint32_t c, uint32_t n_fields, uint8_t *out,
                               uint32_t out_len)
{
    FLT_REQUIRE(n_fields <= 3u && ikm != NULL && label != NULL && out != NULL, FLT_ERR_ARG);
    uint8_t info[16];
    for (uint32_t i = 0; i < 4u; ++i) {
        info[i] = (uint8_t)label[i];
    }
    const uint32_t f[3] = {a, b, c};
    for (uint32_t i = 0; i < n_fields; ++i) {
        flt_le_put32(info + 4u + 4u * i, f[i]);
    }
    return flt_hkdf(kSalt, sizeof kSalt - 1u, ikm, ikm_len, info, 4u + 4u * n_fields, out, out_len);
}

flt_status_t flt_secagg_self_mask(const uint8_t seed[32], uint32_t *values, uint32_t k, int add)
{
    FLT_REQUIRE(k <= FLT_SECAGG_MAX_VALUES, FLT_ERR_RANGE);
    FLT_REQUIRE(seed != NULL && (values != NULL || k == 0u), FLT_ERR_ARG);
    static const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    flt_chacha20_t ks;
    flt_chacha20_init(&ks, seed, nonce, 0);
    flt_status_t s = FLT_OK;
    for (uint32_t j = 0; j < k && s == FLT_OK; ++j) {
        uint32_t m = 0;
        s = flt_chacha20_u32(&ks, &m);                   /* k <= 2^30 words: no counter wrap */
        values[j] = add ? values[j] + m : values[j] - m; /* add is public: mod 2^32 */
    }
    flt_chacha20_wipe(&ks);
    return s;
}
