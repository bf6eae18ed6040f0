/* sha256.h - SHA-256 (FIPS 180-4), streaming, no allocation.
 *
 * Usage: flt_sha256_init(&c); flt_sha256_update(&c, p, n) any number of times;
 * flt_sha256_final(&c, digest). The context is caller-owned (108 bytes) and holds no
 * pointers; after final it must be re-initialised before reuse. data may be NULL only when
 * len == 0. Messages up to 2^61 - 1 bytes. None of these functions can fail.
 * Not constant-time with respect to the *length* of the input; constant-time in its content.
 */
#ifndef FLT_SHA256_H
#define FLT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define FLT_SHA256_DIGEST_SIZE 32u
#define FLT_SHA256_BLOCK_SIZE 64u

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[FLT_SHA256_BLOCK_SIZE];
    uint32_t fill; /* bytes in block */
} flt_sha256_t;

void flt_sha256_init(flt_sha256_t *ctx);
void flt_sha256_update(flt_sha256_t *ctx, const uint8_t *data, size_t len);
void flt_sha256_final(flt_sha256_t *ctx, uint8_t digest[FLT_SHA256_DIGEST_SIZE]);

/* One-shot convenience. */
void flt_sha256(const uint8_t *data, size_t len, uint8_t digest[FLT_SHA256_DIGEST_SIZE]);

#endif /* FLT_SHA256_H */
