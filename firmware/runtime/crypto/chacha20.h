/* chacha20.h - the ChaCha20 stream cipher (RFC 8439 section 2.3-2.4): block function and
 * keystream, for the secure-aggregation masks, no allocation, no libc.
 *
 * Part of crypto/ (with x25519.h, hkdf.h). Depends on core/ only.
 *
 * Contract
 * - flt_chacha20_block(key, counter, nonce, out): the 64-byte block of RFC 8439 section 2.3
 *   (32-byte key, 32-bit block counter, 96-bit nonce; state words little-endian). Cannot fail.
 * - A flt_chacha20_t is a keystream reader: flt_chacha20_init(ctx, key, nonce, counter) starts
 *   the keystream at block `counter`, byte 0. flt_chacha20_read(ctx, out, len) writes the next
 *   len keystream bytes; flt_chacha20_xor(ctx, in, out, len) writes in XOR them to out (in ==
 *   out is allowed, other overlaps are not; in == NULL reads the keystream): the encryption of
 *   RFC 8439 section 2.4 when started at counter 1. Both return FLT_ERR_RANGE, and write
 *   nothing, when the 32-bit block counter would wrap (more than 2^32 blocks under one key and
 *   nonce: RFC 8439 forbids it); the context is then unchanged. flt_chacha20_u32(ctx, &v)
 *   reads the next 4 keystream bytes as a little-endian word (the mask generator's unit).
 * - The context is caller-owned, holds no pointers and keeps the key and one block of
 *   keystream: wipe it (flt_chacha20_wipe) when done. Time and memory accesses depend only on
 *   lengths, never on the key, nonce or data (add-rotate-xor only).
 * - Stack: under 200 bytes; no static data.
 */
#ifndef FLT_CRYPTO_CHACHA20_H
#define FLT_CRYPTO_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#define FLT_CHACHA20_KEY_SIZE 32u
#define FLT_CHACHA20_NONCE_SIZE 12u
#define FLT_CHACHA20_BLOCK_SIZE 64u

typedef struct {
    uint32_t state[16];                     /* constants, key, counter of the NEXT block, nonce */
    uint8_t block[FLT_CHACHA20_BLOCK_SIZE]; /* the current keystream block */
    uint32_t used;                          /* bytes of block already read (64: none left) */
    uint32_t exhausted;                     /* 1 after block 2^32 - 1 was generated */
} flt_chacha20_t;

void flt_chacha20_block(const uint8_t key[FLT_CHACHA20_KEY_SIZE], uint32_t counter,
                        const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE],
                        uint8_t out[FLT_CHACHA20_BLOCK_SIZE]);

void flt_chacha20_init(flt_chacha20_t *ctx, const uint8_t key[FLT_CHACHA20_KEY_SIZE],
                       const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE], uint32_t counter);
FLT_NODISCARD flt_status_t flt_chacha20_read(flt_chacha20_t *ctx, uint8_t *out, size_t len);
FLT_NODISCARD flt_status_t flt_chacha20_xor(flt_chacha20_t *ctx, const uint8_t *in, uint8_t *out,
                                            size_t len);
FLT_NODISCARD flt_status_t flt_chacha20_u32(flt_chacha20_t *ctx, uint32_t *v);
void flt_chacha20_wipe(flt_chacha20_t *ctx);

#endif /* FLT_CRYPTO_CHACHA20_H */
