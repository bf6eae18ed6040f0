/* bytes.h - byte helpers of the protocol sources: copy, wipe, little-endian load/store.
 *
 * The runtime must compile freestanding (no libc headers on some cross toolchains), so this
 * replaces memcpy/memset. The loops write through a volatile pointer so the compiler neither
 * turns them back into libc calls nor drops the wipe of key material. None can fail; the
 * pointers must be valid for n bytes (may be NULL when n == 0); copies must not overlap.
 */
#ifndef FLT_PROTO_BYTES_H
#define FLT_PROTO_BYTES_H

#include <stddef.h>
#include <stdint.h>

void flt_bytes_copy(void *dst, const void *src, size_t n);
void flt_bytes_zero(void *dst, size_t n);

void flt_le_put16(uint8_t *p, uint16_t v);
void flt_le_put32(uint8_t *p, uint32_t v);
uint16_t flt_le_get16(const uint8_t *p);
uint32_t flt_le_get32(const uint8_t *p);

#endif /* FLT_PROTO_BYTES_H */
