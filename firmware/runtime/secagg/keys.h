/* keys.h - the key schedule of secure aggregation (docs/protocol.md "Secure aggregation"):
 * every secret a device uses is derived from its device secret, which only the device holds.
 *
 * Part of secagg/. Depends on crypto/hkdf.h, crypto/chacha20.h and core/.
 *
 * Contract
 * - All derivations are HKDF-SHA256(salt = "fltiny secagg v1", IKM, info), 32 bytes, with the
 *   info's integer fields 4 little-endian bytes each:
 *     channel secret  c_u(e)     IKM device secret, info "chan" | e
 *     mask secret     s_u(e, r)  IKM device secret, info "mkey" | e | r
 *     self-mask seed  b_u(e, r)  IKM device secret, info "self" | e | r
 *     share poly key  (kind)     IKM device secret, info "poly" | kind | e | r  (kind 0: s, 1: b)
 *     box keys        (64 B)     IKM X25519(c_u, c_v), info "box " | r | from | to
 *   e is the session (key epoch), r the round. c_u is the X25519 secret of the session's
 *   channel key (public key advertised once per session; the pair's shared secret encrypts the
 *   share boxes and is never shared or revealed). s_u is the X25519 secret of the round's mask
 *   key: its pair secrets key the pairwise masks (crypto/secagg_mask.h), and it is the secret
 *   Shamir-shared for dropout recovery, so it is fresh per round (a revealed s_u exposes the
 *   masks of that round only). b_u keys the self mask.
 * - flt_secagg_derive(device_secret, label, a, b, c, n_fields, out): the derivation above with
 *   the 4-byte label and n_fields (0..3) of the integers a, b, c; FLT_ERR_ARG for n_fields > 3.
 * - flt_secagg_self_mask(seed, values, k, add): values[j] += (add) or -= (!add) word j of
 *   ChaCha20(seed, nonce 0, counter 0), mod 2^32. FLT_ERR_RANGE when k > FLT_SECAGG_MAX_VALUES
 *   (values untouched). Time depends on k only.
 * - Secrets on the stack are wiped. Stack: about 700 bytes (HKDF).
 */
#ifndef FLT_SECAGG_KEYS_H
#define FLT_SECAGG_KEYS_H

#include <stdint.h>

#include "core/flt_status.h"

#define FLT_SECAGG_SECRET_SIZE 32u

FLT_NODISCARD flt_status_t flt_secagg_derive(const uint8_t *ikm, uint32_t ikm_len,
                                             const char label[4], uint32_t a, uint32_t b,
                                             uint32_t c, uint32_t n_fields, uint8_t *out,
                                             uint32_t out_len);
FLT_NODISCARD flt_status_t flt_secagg_self_mask(const uint8_t seed[32], uint32_t *values,
                                                uint32_t k, int add);

#endif /* FLT_SECAGG_KEYS_H */
