/* local_dp.h - local differential privacy of a device's round update: the Gaussian mechanism of
 * DP-FedAvg (McMahan, Ramage, Talwar, Zhang 2018) run on the device itself, so that no party
 * but the device ever sees its update without noise (docs/protocol.md "Local differential
 * privacy"; TRAIN flag LOCAL_DP).
 *
 * Part of privacy/. Depends on crypto/ (ChaCha20, HKDF-SHA256), train/flt_math.h and core/.
 *
 * Contract
 * - flt_ldp_privatize(params, global, n, clip, noise, key, nonce, out, &norm): the update
 *   u[i] = params[i] - global[i] (float32), its L2 norm = flt_sqrtf(sequential sum of u[i] *
 *   u[i]), the clip factor s = clip / norm when norm > clip, else 1; then
 *       out[i] = global[i] + (u[i] * s + (noise * clip) * g[i])
 *   with g[0..n-1] independent standard normal draws (flt_ldp_gaussians). `norm` gets the
 *   pre-clip norm. One release is the Gaussian mechanism with L2 sensitivity 2 * clip (any
 *   two data sets of the device give updates in the ball of radius clip) and standard
 *   deviation noise * clip: noise multiplier noise / 2 against that sensitivity
 *   (fltiny/privacy/accountant.py, local_epsilon).
 * - Noise stream: ChaCha20 (RFC 8439) keyed by HKDF-SHA256(salt none, ikm = key[32], info =
 *   "fltiny ldp" | nonce u32 little-endian), nonce zero, from block 0. The key is the device's
 *   secret (its TRNG's, never the link key); the caller never uses one (key, nonce) twice for
 *   different updates: noise used twice would cancel in the difference of two releases.
 * - flt_ldp_gaussians(key, nonce, out, n): the n draws alone (for tests and the host's oracle):
 *   Marsaglia's polar method on pairs (a, b) of uniforms in (-1, 1), a = ((int32_t)(r >> 8) -
 *   2^23 + 0.5) / 2^23 for each keystream word r (little-endian); a pair with s = a*a + b*b
 *   >= 1 or s == 0 is rejected and the next pair drawn; else f = flt_sqrtf(-2 * flt_logf(s) /
 *   s), the draws a * f, b * f (an odd n drops the last one). All float32 (bit-identical on
 *   every target built with -ffp-contract=off). The floating-point sampler is not hardened
 *   against the attacks on floating-point noise (Mironov 2012): a documented limitation.
 * - Failures: NULL pointers -> FLT_ERR_ARG; clip not finite or <= 0, noise not finite or < 0
 *   -> FLT_ERR_RANGE; a non-finite update -> FLT_ERR_NONFINITE. out may be params itself; it
 *   must not overlap global. Nothing is written on the failures above. No malloc; stack: a ChaCha20
 *   context and a block (about 250 bytes) plus HKDF's 400.
 */
#ifndef FLT_PRIVACY_LOCAL_DP_H
#define FLT_PRIVACY_LOCAL_DP_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#define FLT_LDP_KEY_SIZE 32u

FLT_NODISCARD flt_status_t flt_ldp_gaussians(const uint8_t key[FLT_LDP_KEY_SIZE], uint32_t nonce,
                                             float *out, uint32_t n);
FLT_NODISCARD flt_status_t flt_ldp_privatize(const float *params, const float *global, uint32_t n,
                                             float clip, float noise,
                                             const uint8_t key[FLT_LDP_KEY_SIZE], uint32_t nonce,
                                             float *out, float *norm);

#endif /* FLT_PRIVACY_LOCAL_DP_H */
