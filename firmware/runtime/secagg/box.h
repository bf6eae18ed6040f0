/* box.h - the encrypted, authenticated envelope of one device's Shamir shares for one peer
 * (secure aggregation's SHARES message): ChaCha20 then HMAC-SHA256 (encrypt-then-MAC) under
 * keys derived from the pair's channel secret, so the server that relays a box learns nothing
 * of the shares and cannot alter or redirect one undetected.
 *
 * Part of secagg/. Depends on keys.h, crypto/chacha20.h, proto/hmac.h and core/.
 *
 * Contract
 * - Keys: 64 bytes of flt_secagg_derive(IKM = the 32-byte X25519 channel shared secret, "box",
 *   round, from, to): bytes 0..31 the ChaCha20 key, 32..63 the HMAC key. They differ per
 *   round and direction, so ChaCha20 runs with nonce 0 and counter 0.
 * - flt_secagg_box_seal(chan, round, from, to, pt, box): box = ct | tag, ct = pt XOR keystream
 *   (FLT_SECAGG_BOX_PT bytes), tag = the first 16 bytes of HMAC(mac key, round | from | to |
 *   ct). FLT_ERR_ARG when from == to.
 * - flt_secagg_box_open(chan, round, from, to, box, pt): checks the tag in constant time, then
 *   decrypts. FLT_ERR_AUTH on a wrong tag (pt is then untouched); FLT_ERR_ARG when from == to.
 * - Keys on the stack are wiped. Time depends on no secret. Stack: about 800 bytes.
 */
#ifndef FLT_SECAGG_BOX_H
#define FLT_SECAGG_BOX_H

#include <stdint.h>

#include "core/flt_status.h"

#define FLT_SECAGG_BOX_PT 64u  /* share of s_u (32) | share of b_u (32) */
#define FLT_SECAGG_BOX_TAG 16u /* HMAC-SHA256 truncated */
#define FLT_SECAGG_BOX_SIZE (FLT_SECAGG_BOX_PT + FLT_SECAGG_BOX_TAG)

FLT_NODISCARD flt_status_t flt_secagg_box_seal(const uint8_t chan[32], uint32_t round,
                                               uint32_t from, uint32_t to,
                                               const uint8_t pt[FLT_SECAGG_BOX_PT],
                                               uint8_t box[FLT_SECAGG_BOX_SIZE]);
FLT_NODISCARD flt_status_t flt_secagg_box_open(const uint8_t chan[32], uint32_t round,
                                               uint32_t from, uint32_t to,
                                               const uint8_t box[FLT_SECAGG_BOX_SIZE],
                                               uint8_t pt[FLT_SECAGG_BOX_PT]);

#endif /* FLT_SECAGG_BOX_H */
