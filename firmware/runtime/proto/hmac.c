/* HMAC after RFC 2104: H((K ^ opad) || H((K ^ ipad) || text)). */
#include "hmac.h"

#include "core/flt_bytes.h"

void flt_hmac_init(flt_hmac_t *ctx, const uint8_t *key, size_t key_len)
{
    uint8_t k[FLT_SHA256_BLOCK_SIZE];
    uint8_t ipad[FLT_SHA256_BLOCK_SIZE];
    uint32_t i;
    flt_bytes_zero(k, sizeof k);
    if (key_len > FLT_SHA256_BLOCK_SIZE) {
        flt_sha256(key, key_len, k);
    } else if (key_len > 0u) {
        flt_bytes_copy(k, key, key_len);
    }
    for (i = 0; i < FLT_SHA256_BLOCK_SIZE; ++i) {
        ipad[i] = (uint8_t)(k[i] ^ 0x36u);
        ctx->okey[i] = (uint8_t)(k[i] ^ 0x5cu);
    }
    flt_sha256_init(&ctx->inner);
    flt_sha256_update(&ctx->inner, ipad, sizeof ipad);
    flt_bytes_zero(k, sizeof k);
    flt_bytes_zero(ipad, sizeof ipad);
}

void flt_hmac_update(flt_hmac_t *ctx, const uint8_t *data, size_t len)
{
    flt_sha256_update(&ctx->inner, data, len);
}

void flt_hmac_final(flt_hmac_t *ctx, uint8_t mac[FLT_SHA256_DIGEST_SIZE])
{
    uint8_t ih[FLT_SHA256_DIGEST_SIZE];
    flt_sha256_t outer;
    flt_sha256_final(&ctx->inner, ih);
    flt_sha256_init(&outer);
    flt_sha256_update(&outer, ctx->okey, sizeof ctx->okey);
    flt_sha256_update(&outer, ih, sizeof ih);
    flt_sha256_final(&outer, mac);
}

void flt_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                     uint8_t mac[FLT_SHA256_DIGEST_SIZE])
{
    flt_hmac_t ctx;
    flt_hmac_init(&ctx, key, key_len);
    flt_hmac_update(&ctx, data, len);
    flt_hmac_final(&ctx, mac);
    flt_bytes_zero(&ctx, sizeof ctx);
}

int flt_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;
    size_t i;
    for (i = 0; i < n; ++i) {
        diff = (uint8_t)(diff | (a[i] ^ b[i]));
    }
    return diff == 0u;
}
