/* crc32.h - CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, init and final xor
 * 0xFFFFFFFF), the same function as zlib.crc32 / binascii.crc32.
 *
 * A 16-entry nibble table (64 bytes of flash) instead of the usual 1 KiB byte table.
 * Incremental use: crc = flt_crc32_update(0, a, na); crc = flt_crc32_update(crc, b, nb);
 * gives the CRC of a||b (pass the previous *final* value, as with zlib).
 * No allocation, no state; data may be NULL only when len == 0. Never fails.
 */
#ifndef FLT_CRC32_H
#define FLT_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t flt_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#endif /* FLT_CRC32_H */
