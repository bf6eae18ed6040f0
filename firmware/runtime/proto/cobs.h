/* cobs.h - Consistent Overhead Byte Stuffing (Cheshire & Baker, IEEE/ACM ToN 1999).
 *
 * Encoding removes every 0x00 from the data so 0x00 can delimit frames on the wire. Output
 * is at most FLT_COBS_MAX_ENCODED(n) bytes; the encoder never emits 0x00 and does not append
 * the delimiter (the frame layer does). The canonical form (also produced by the Python oracle,
 * tests/oracles/cobs.py): a block is closed at every zero and after 254 non-zero bytes, and the
 * last block is always written, so 254 non-zero bytes encode as FF <254 bytes> 01.
 *
 * Buffers: caller-owned; in/out must not overlap. The streaming encoder (flt_cobs_enc_*)
 * lets the frame layer encode header, payload, tag and CRC without copying them together.
 *
 * Failures: encode returns FLT_ERR_NOMEM when cap is too small (out unspecified) and
 * FLT_ERR_ARG for NULL pointers; decode returns FLT_ERR_FORMAT for a 0x00 inside the input or
 * a block that runs past the end, FLT_ERR_NOMEM when the output does not fit, FLT_ERR_ARG for
 * NULL pointers. Decoding the empty input gives the empty output.
 */
#ifndef FLT_COBS_H
#define FLT_COBS_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

/* Worst case encoded size of n bytes: one code byte per started run of 254, plus one. */
#define FLT_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos;      /* next write position */
    size_t code_pos; /* where the current block's code byte goes */
    uint8_t code;    /* 1 + bytes in the current block */
    uint8_t overflow;
} flt_cobs_enc_t;

void flt_cobs_enc_begin(flt_cobs_enc_t *enc, uint8_t *out, size_t cap);
void flt_cobs_enc_put(flt_cobs_enc_t *enc, const uint8_t *data, size_t len);
/* Closes the last block; FLT_ERR_NOMEM if any write did not fit. */
FLT_NODISCARD flt_status_t flt_cobs_enc_end(flt_cobs_enc_t *enc, size_t *out_len);

FLT_NODISCARD flt_status_t flt_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                           size_t *out_len);
FLT_NODISCARD flt_status_t flt_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                                           size_t *out_len);

#endif /* FLT_COBS_H */
