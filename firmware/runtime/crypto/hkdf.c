/* hkdf.c - HKDF-SHA256 (RFC 5869); see hkdf.h. */
#include "hkdf.h"

#include "core/flt_bytes.h"
#include "proto/hmac.h"

void flt_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      uint8_t prk[FLT_HKDF_PRK_SIZE])
{
    /* HMAC pads a short key with zeros, so an empty key is the RFC's HashLen zero bytes. */
    flt_hmac_sha256(salt, salt_len, ikm, ikm_len, prk);
}

flt_status_t flt_hkdf_expand(const uint8_t prk[FLT_HKDF_PRK_SIZE], const uint8_t *info,
                             size_t info_len, uint8_t *okm, size_t okm_len)
{
    FLT_REQUIRE(okm_len <= FLT_HKDF_MAX_OKM, FLT_ERR_RANGE);
    uint8_t t[FLT_SHA256_DIGEST_SIZE];
    flt_hmac_t h;
    size_t done = 0;
    for (uint32_t i = 1; done < okm_len; ++i) {
        const uint8_t counter = (uint8_t)i; /* i <= 255 by the length check */
        flt_hmac_init(&h, prk, FLT_HKDF_PRK_SIZE);
        if (i > 1u) {
            flt_hmac_update(&h, t, sizeof t);
        }
        flt_hmac_update(&h, info, info_len);
        flt_hmac_update(&h, &counter, 1);
        flt_hmac_final(&h, t);
        const size_t n = okm_len - done < sizeof t ? okm_len - done : sizeof t;
        flt_bytes_copy(okm + done, t, n);
        done += n;
    }
    flt_bytes_zero(t, sizeof t);
    flt_bytes_zero(&h, sizeof h);
    return FLT_OK;
}

flt_status_t flt_hkdf(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      const uint8_t *info, size_t info_len, uint8_t *okm, size_t okm_len)
{
    FLT_REQUIRE(okm_len <= FLT_HKDF_MAX_OKM, FLT_ERR_RANGE);
    uint8_t prk[FLT_HKDF_PRK_SIZE];
    flt_hkdf_extract(salt, salt_len, ikm, ikm_len, prk);
    const flt_status_t s = flt_hkdf_expand(prk, info, info_len, okm, okm_len);
    flt_bytes_zero(prk, sizeof prk);
    return s;
}
