/* payload.h - the delta payload codec, version 3 (byte layout: docs/protocol.md,
 * "## Delta payload (version 3)"; numpy oracle: tests/oracles/payload.py; host binding:
 * fltiny/native/delta.py).
 *
 * What it does
 *   Serialises a flt_sparse_delta_t (delta.h) to bytes and back:
 *     header (4..17 bytes: version, mode and format in one byte, the Rice parameters, varints
 *     n, k and the block size) | scales (float32 LE) | index section | k int8 values
 *   The entries are in one of four encodings, chosen by the encoder as the smallest (ties go
 *   to the lower format id): LEB128 varints of index gaps, a bitmap of n bits, or
 *   Golomb-Rice coded gaps whose parameter comes from the mean gap, each followed by the k
 *   int8 values; or Rice-coded gaps interleaved with Rice-coded value magnitudes above their
 *   minimum and sign bits (see protocol.md).
 *
 * Buffers
 *   The caller owns every buffer. Encode writes at most `cap` bytes to `out`;
 *   flt_payload_max_size() bounds the automatic choice. Decode reads at most `len` bytes of
 *   `buf` and writes at most limits->k_max indices and values and limits->scales_max scales
 *   into the arrays that out->indices / values / scales point to (the pointers are inputs;
 *   out->n, k, mode and block_size are outputs).
 *
 * Failures (never a crash, never a read or write outside the given sizes)
 *   Encode: FLT_ERR_ARG / FLT_ERR_RANGE / FLT_ERR_NONFINITE for a delta that breaks the
 *   invariants of flt_sparse_delta_t (or has a zero scale with nonzero values), FLT_ERR_ARG
 *   for an unknown format, FLT_ERR_NOMEM when cap is too small (out unspecified).
 *   Decode, the order of the checks is docs/protocol.md's table (first failure wins):
 *     FLT_ERR_TRUNCATED    input ends before a header, scales, index section or values end
 *     FLT_ERR_FORMAT       a nonzero Rice parameter byte outside the Rice formats, a nonzero
 *                          value Rice parameter (bits 5-7) in format RICE; qmin > 127 (format
 *                          RICE_VALUES); block size 0 or > 65535 in block
 *                          mode; n == 0; k > n; zero gap (indices not strictly increasing);
 *                          overlong or > 32-bit varint (header or gaps); bitmap with wrong
 *                          popcount or padding bits set; Rice padding bits set; zero scale
 *                          with nonzero values; trailing bytes
 *     FLT_ERR_UNSUPPORTED  version nibble != 3 (a version-2 or version-1 payload starts with
 *                          "FD": nibble 4), unknown quantization mode
 *     FLT_ERR_OVERSIZE     n > n_max, k > k_max, number of scales > scales_max
 *     FLT_ERR_NONFINITE    a scale is inf or NaN
 *     FLT_ERR_RANGE        a scale is negative (sign bit set, -0 included); an index >= n;
 *                          a value of -128; a Rice-coded value above 127
 *     FLT_ERR_ARG          NULL arguments
 *   On failure the contents of out and its arrays are unspecified.
 */
#ifndef FLT_PAYLOAD_H
#define FLT_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "delta.h"
#include "core/flt_status.h"

#define FLT_PAYLOAD_VERSION 3u
/* header: version << 4 | mode << 2 | format | the Rice parameter r (bits 0-4) and, in format
 * RICE_VALUES, the value Rice parameter (bits 5-7), then varints n, k and, in block mode, the
 * block size */
#define FLT_PAYLOAD_FIXED_SIZE 2u
#define FLT_PAYLOAD_HEADER_MIN 4u  /* n and k below 128, tensor mode */
#define FLT_PAYLOAD_HEADER_MAX 15u /* 2 + 5 + 5 + 3 */
#define FLT_PAYLOAD_MAX_RICE 31u

typedef enum {
    FLT_INDEX_VARINT = 0, /* LEB128 varints of gaps idx[j] - idx[j-1] (idx[-1] = -1), all >= 1 */
    FLT_INDEX_BITMAP = 1, /* ceil(n/8) bytes, bit i%8 (LSB first) of byte i/8 set iff i chosen */
    FLT_INDEX_RICE = 2,   /* Rice codes of gap-1, MSB first, zero padded to a byte */
    /* entries as one bit stream: per entry the Rice code of gap-1, then the Rice code of
     * |q| - qmin and a sign bit when q != 0 (no int8 value section); protocol.md */
    FLT_INDEX_RICE_VALUES = 3,
    FLT_INDEX_AUTO = 255 /* encoder only: the smallest of the four */
} flt_index_format_t;
#define FLT_INDEX_FORMATS 4u
#define FLT_PAYLOAD_MAX_VALUE_RICE 7u

typedef struct {
    uint32_t n_max;      /* largest dense length accepted */
    uint32_t k_max;      /* capacity of out->indices and out->values */
    uint32_t scales_max; /* capacity of out->scales */
} flt_payload_limits_t;

/* Bytes after the scales (index section and values) of each format for this delta
 * (sizes[FLT_INDEX_*]) and the gap Rice parameter the encoder would use. Validates the delta
 * like flt_payload_encode. */
FLT_NODISCARD flt_status_t flt_payload_section_sizes(const flt_sparse_delta_t *delta,
                                                     uint64_t sizes[FLT_INDEX_FORMATS],
                                                     uint8_t *rice_param);

/* Upper bound of the encoded size with FLT_INDEX_AUTO:
 * header + 4 * num_scales + ceil(n / 8) + k (saturates at SIZE_MAX). Never fails. */
size_t flt_payload_max_size(uint32_t n, uint32_t k, flt_quant_mode_t mode, uint32_t block_size);

/* Encodes delta with the given index format (FLT_INDEX_AUTO for the normal choice) into
 * out[0..cap-1]; *out_len receives the byte count. */
FLT_NODISCARD flt_status_t flt_payload_encode(const flt_sparse_delta_t *delta,
                                              flt_index_format_t format, uint8_t *out, size_t cap,
                                              size_t *out_len);

/* Decodes and validates buf[0..len-1] into *out (see "Buffers" and "Failures" above). On
 * success the decoded delta satisfies every invariant of flt_sparse_delta_t. */
FLT_NODISCARD flt_status_t flt_payload_decode(const uint8_t *buf, size_t len,
                                              const flt_payload_limits_t *limits,
                                              flt_sparse_delta_t *out);

#endif /* FLT_PAYLOAD_H */
