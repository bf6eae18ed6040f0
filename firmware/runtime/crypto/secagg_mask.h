/* secagg_mask.h - pairwise masks of secure aggregation (docs/protocol.md "Secure aggregation
 * (design)"): a device adds, for every peer of the round, a ChaCha20 keystream keyed through
 * HKDF-SHA256 by the pair's X25519 shared secret, to its quantized update on the round's shared
 * index set, in the ring of integers mod 2^32. The masks of each pair cancel in the sum.
 *
 * Part of crypto/. Depends on chacha20.h, hkdf.h and core/.
 *
 * Contract
 * - flt_secagg_pair_key(shared, round, a, b, key): the pair's mask key of one round,
 *   HKDF-SHA256(salt = "fltiny secagg v1", IKM = the 32-byte X25519 shared secret,
 *   info = "mask" | round | min(a, b) | max(a, b), each id and the round as 4 little-endian
 *   bytes), 32 bytes. Both devices of the pair derive the same key. FLT_ERR_ARG when a == b.
 * - flt_secagg_mask(self_id, round, peers, n_peers, values, k): for each peer p, the mask
 *   m_p[j] = the j-th little-endian 32-bit word of ChaCha20(key = pair key, nonce = 12 zero
 *   bytes, counter 0) (the key is fresh per round and pair, so one nonce suffices);
 *   values[j] += m_p[j] when p's id is above self_id, values[j] -= m_p[j] when below, all mod
 *   2^32, for j in 0..k-1 (position j of the round's shared index set). FLT_ERR_ARG when a peer
 *   id equals self_id or when values is NULL with k > 0; FLT_ERR_RANGE when k > 2^30 (the
 *   keystream of one key would wrap). On failure values is left partially masked and must be
 *   discarded (never sent).
 * - peers[i].shared is the X25519 shared secret with peer i (flt_x25519_shared); the caller
 *   owns it and wipes it. The derived keys and keystream live on the stack and are wiped.
 *   Time depends on n_peers and k only: the sign is chosen from the public ids, and the value
 *   arithmetic is the same for every secret.
 * - Stack: about 1 KB (HKDF and one ChaCha20 context); no static data.
 */
#ifndef FLT_CRYPTO_SECAGG_MASK_H
#define FLT_CRYPTO_SECAGG_MASK_H

#include <stdint.h>

#include "core/flt_status.h"

#define FLT_SECAGG_KEY_SIZE 32u
#define FLT_SECAGG_MAX_VALUES (1u << 30)

typedef struct {
    uint32_t id;        /* the peer's device id (public) */
    uint8_t shared[32]; /* X25519 shared secret with that peer (secret) */
} flt_secagg_peer_t;

FLT_NODISCARD flt_status_t flt_secagg_pair_key(const uint8_t shared[32], uint32_t round, uint32_t a,
                                               uint32_t b, uint8_t key[FLT_SECAGG_KEY_SIZE]);
FLT_NODISCARD flt_status_t flt_secagg_mask(uint32_t self_id, uint32_t round,
                                           const flt_secagg_peer_t *peers, uint32_t n_peers,
                                           uint32_t *values, uint32_t k);

#endif /* FLT_CRYPTO_SECAGG_MASK_H */
