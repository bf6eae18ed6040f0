/* shamir.h - Shamir t-of-n secret sharing (Shamir 1979) byte-wise over GF(2^8), for the
 * dropout recovery of secure aggregation (docs/protocol.md "Secure aggregation"): a device
 * splits its X25519 secret and its round's self-mask seed into shares for its peers.
 *
 * Part of secagg/. Depends on crypto/chacha20.h and core/.
 *
 * Contract
 * - GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B). Byte i of the secret is
 *   the constant term of its own polynomial of degree t - 1; the t - 1 other coefficients of
 *   byte i are bytes of a ChaCha20 keystream keyed by the caller's 32-byte poly_key (nonce 0,
 *   counter 0: coefficient j of byte i is keystream byte (j - 1) * len + i). A poly_key drawn
 *   from a secret only the dealer knows makes the shares of any t - 1 holders independent of
 *   the secret; the same poly_key gives the same shares again (a dealer that restarts deals
 *   the same polynomial, never a second one of the same secret).
 * - flt_shamir_share(secret, len, t, poly_key, x, share): share[i] = p_i(x) for the holder at
 *   x (1..255; x = 0 would be the secret itself). FLT_ERR_ARG when x == 0, t == 0, t > 255, or
 *   len == 0 / len > FLT_SHAMIR_MAX_LEN; share is then untouched.
 * - flt_shamir_recover(xs, shares, t, len, secret): the secret from t shares, share j at
 *   shares + j * len held at xs[j] (Lagrange interpolation at 0). FLT_ERR_ARG when an x is 0,
 *   two xs are equal, t == 0 or len is out of range (secret untouched). With fewer than t of
 *   the dealer's shares, or a wrong share, the result is some other byte string: the caller
 *   checks it (secure aggregation recomputes the public key of a recovered X25519 secret).
 * - Constant time in the secret, the coefficients and the shares: GF multiplication is
 *   shift-and-masked-xor, inversion is exponentiation (a^254), no table, no secret branch or
 *   index. The xs are public. The keystream and products on the stack are wiped.
 * - Stack: under 300 bytes (one ChaCha20 context); no static data. The caller owns buffers.
 */
#ifndef FLT_SECAGG_SHAMIR_H
#define FLT_SECAGG_SHAMIR_H

#include <stdint.h>

#include "core/flt_status.h"

#define FLT_SHAMIR_MAX_LEN 64u
#define FLT_SHAMIR_MAX_T 255u

uint8_t flt_gf256_mul(uint8_t a, uint8_t b);
uint8_t flt_gf256_inv(uint8_t a); /* 0 for a == 0 */

FLT_NODISCARD flt_status_t flt_shamir_share(const uint8_t *secret, uint32_t len, uint32_t t,
                                            const uint8_t poly_key[32], uint8_t x, uint8_t *share);
FLT_NODISCARD flt_status_t flt_shamir_recover(const uint8_t *xs, const uint8_t *shares, uint32_t t,
                                              uint32_t len, uint8_t *secret);

#endif /* FLT_SECAGG_SHAMIR_H */
