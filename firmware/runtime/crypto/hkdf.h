/* hkdf.h - HKDF-SHA256 (RFC 5869): extract-then-expand key derivation over the runtime's
 * HMAC-SHA256 (proto/hmac.h), no allocation, no libc.
 *
 * Part of crypto/ (with x25519.h, chacha20.h). Depends on core/ and proto/hmac.h, sha256.h.
 *
 * Contract
 * - flt_hkdf_extract(salt, salt_len, ikm, ikm_len, prk): PRK = HMAC(salt, IKM); an empty salt
 *   (salt_len 0) means 32 zero bytes, as RFC 5869 section 2.2 says. Cannot fail.
 * - flt_hkdf_expand(prk, info, info_len, okm, okm_len): the first okm_len bytes of
 *   T(1) | T(2) | ... (section 2.3) for a 32-byte PRK. FLT_ERR_RANGE when okm_len > 255 * 32
 *   (nothing written). okm_len 0 writes nothing and succeeds.
 * - flt_hkdf(salt, ..., ikm, ..., info, ..., okm, okm_len): extract then expand; the PRK lives
 *   on the stack only and is wiped. Same failure as expand.
 * - Pointers may be NULL only with a zero length; okm must not overlap the inputs. The caller
 *   owns every buffer. Time depends on the lengths only. Stack: about 400 bytes.
 */
#ifndef FLT_CRYPTO_HKDF_H
#define FLT_CRYPTO_HKDF_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#define FLT_HKDF_PRK_SIZE 32u
#define FLT_HKDF_MAX_OKM (255u * 32u)

void flt_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      uint8_t prk[FLT_HKDF_PRK_SIZE]);
FLT_NODISCARD flt_status_t flt_hkdf_expand(const uint8_t prk[FLT_HKDF_PRK_SIZE],
                                           const uint8_t *info, size_t info_len, uint8_t *okm,
                                           size_t okm_len);
FLT_NODISCARD flt_status_t flt_hkdf(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                                    size_t ikm_len, const uint8_t *info, size_t info_len,
                                    uint8_t *okm, size_t okm_len);

#endif /* FLT_CRYPTO_HKDF_H */
