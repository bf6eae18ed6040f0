/* hmac.h - HMAC-SHA256 (RFC 2104, FIPS 198-1) over sha256.h, streaming, no allocation.
 *
 * Usage: flt_hmac_init(&c, key, key_len); flt_hmac_update(&c, p, n)...;
 * flt_hmac_final(&c, mac). Keys longer than 64 bytes are hashed first (RFC 2104 section 2).
 * The context is caller-owned and keeps the outer padded key, so wipe it when done if the key
 * is secret. key / data may be NULL only with a zero length. None of these can fail.
 * flt_ct_equal compares n bytes in time independent of their content (for tag checks).
 */
#ifndef FLT_HMAC_H
#define FLT_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

typedef struct {
    flt_sha256_t inner;
    uint8_t okey[FLT_SHA256_BLOCK_SIZE]; /* key xor 0x5c */
} flt_hmac_t;

void flt_hmac_init(flt_hmac_t *ctx, const uint8_t *key, size_t key_len);
void flt_hmac_update(flt_hmac_t *ctx, const uint8_t *data, size_t len);
void flt_hmac_final(flt_hmac_t *ctx, uint8_t mac[FLT_SHA256_DIGEST_SIZE]);

/* One-shot convenience. */
void flt_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                     uint8_t mac[FLT_SHA256_DIGEST_SIZE]);

/* 1 when a[0..n-1] == b[0..n-1], else 0; runtime does not depend on where they differ. */
int flt_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif /* FLT_HMAC_H */
