/* x25519.h - X25519 Diffie-Hellman (RFC 7748 section 5) for the secure-aggregation key
 * agreement, constant time, no allocation, no libc.
 *
 * Part of crypto/ (with chacha20.h, hkdf.h). Depends on core/ only. Field arithmetic mod
 * p = 2^255 - 19 in radix 2^25.5 (ten signed 32-bit limbs of alternately 26 and 25 bits) with
 * 32x32->64-bit products, so the same code runs on 64-bit hosts, Cortex-M0+/M4/M7 and RV32
 * (no 128-bit type anywhere).
 *
 * Contract
 * - flt_x25519(out, scalar, u): the RFC 7748 function X25519(k, u). The scalar is clamped as
 *   the RFC says (bits 0-2 and 255 cleared, bit 254 set) on a private copy; the top bit of u
 *   is ignored and non-canonical u (>= p) is accepted, both as the RFC requires. out may alias
 *   neither input. Cannot fail.
 * - flt_x25519_public(pub, secret): X25519(secret, 9), the public key of a 32-byte secret.
 * - flt_x25519_shared(shared, secret, peer): X25519(secret, peer) and FLT_ERR_ARG when the
 *   result is all zeros (peer is a small-order point: RFC 7748 section 6.1 "check"); shared
 *   is written either way (all zeros on that failure) and must not be used after a failure.
 * - Timing and memory access pattern depend on no secret (scalar bits select with masked
 *   conditional swaps; no secret-dependent branch or index); the result's zero check is
 *   branch-free until the final status. Key material on the stack is wiped before return.
 *   The caller owns every buffer and wipes its own copies of secrets.
 * - Stack: about 1.3 KB (ladder state and temporaries); no static data besides constants.
 * - Relies on arithmetic right shift of negative signed integers (every GCC/Clang target;
 *   checked at compile time in x25519.c).
 */
#ifndef FLT_CRYPTO_X25519_H
#define FLT_CRYPTO_X25519_H

#include <stdint.h>

#include "core/flt_status.h"

#define FLT_X25519_SIZE 32u

void flt_x25519(uint8_t out[FLT_X25519_SIZE], const uint8_t scalar[FLT_X25519_SIZE],
                const uint8_t u[FLT_X25519_SIZE]);
void flt_x25519_public(uint8_t pub[FLT_X25519_SIZE], const uint8_t secret[FLT_X25519_SIZE]);
FLT_NODISCARD flt_status_t flt_x25519_shared(uint8_t shared[FLT_X25519_SIZE],
                                             const uint8_t secret[FLT_X25519_SIZE],
                                             const uint8_t peer[FLT_X25519_SIZE]);

#endif /* FLT_CRYPTO_X25519_H */
