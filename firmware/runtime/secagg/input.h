/* input.h - what a device masks in a secure-aggregation round: its update quantized on the
 * round's shared index set (docs/protocol.md "Secure aggregation"), so every device of the
 * round sends K values at the same positions and the masked payload stays sparse.
 *
 * Part of secagg/. Depends on keys.h, crypto/chacha20.h and core/. The server draws the same
 * set through the host binding (fltiny/native/secagg.py): one implementation.
 *
 * Contract
 * - flt_secagg_index_set(seed, round, n, k, idx): K = k distinct indices of 0..n-1 in
 *   increasing order, a uniformly random k-subset drawn by selection sampling (Knuth's
 *   Algorithm S) from the ChaCha20 keystream keyed by flt_secagg_derive(IKM = the 4-byte
 *   little-endian seed, "indx", round): index i is kept when r * (n - i) < (k - kept) * 2^32
 *   for the next keystream word r, so exactly k are kept. FLT_ERR_RANGE when k == 0, k > n or
 *   k > FLT_SECAGG_MAX_VALUES; FLT_ERR_ARG for NULL idx. idx is caller-owned (k words).
 * - flt_secagg_quantize(delta, n, idx, k, scale, qmax, out): out[j] = the two's complement (mod
 *   2^32) of clamp(round(delta[idx[j]] * scale), -qmax, qmax), rounding half away from zero;
 *   NaN reads as 0. FLT_ERR_RANGE when an index is >= n, qmax > 2^24 (exact in float), or scale is
 * not finite and > 0 (out then partially written). With n devices and n * qmax < 2^(w-1) the sum of
 *   their values mod 2^w decodes exactly as a signed w-bit integer.
 * - No allocation; stack under 500 bytes.
 */
#ifndef FLT_SECAGG_INPUT_H
#define FLT_SECAGG_INPUT_H

#include <stdint.h>

#include "core/flt_status.h"

FLT_NODISCARD flt_status_t flt_secagg_index_set(uint32_t seed, uint32_t round, uint32_t n,
                                                uint32_t k, uint32_t *idx);
FLT_NODISCARD flt_status_t flt_secagg_quantize(const float *delta, uint32_t n, const uint32_t *idx,
                                               uint32_t k, float scale, uint32_t qmax,
                                               uint32_t *out);

#endif /* FLT_SECAGG_INPUT_H */
