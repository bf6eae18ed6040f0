/* flt_data.h - the local data blob of a device (format: docs/boards.md "Data blob").
 *
 * Layout, version 1, little-endian, 48-byte header:
 *   0  "FLTD"           4  u16 version = 1     6  u16 header_size = 48
 *   8  u32 device_id    12 u32 count (windows)
 *   16 u16 window_len   18 u16 channels
 *   20 u8 target_kind (0: int32 labels, 1: float32 targets)   21 u8 n_targets   22 u16 0
 *   24 f32 input_scale  28 i32 input_zero_point
 *   32 u8[8] model_hash (first 8 bytes of sha256(backbone.tflite))
 *   40 u32 body_crc32 (IEEE CRC-32 of every byte after the header)
 *   44 u32 n_test: the last n_test windows are the personal test split (< count; 0: none)
 *   48 int8 windows[count][window_len][channels], zero-padded to a multiple of 4 bytes,
 *      then int32 labels[count] (kind 0) or float32 targets[count][n_targets] (kind 1).
 *
 * Contract
 * - flt_data_parse(buf, cap, out) checks the header against cap, the CRC of the body and the
 *   4-byte alignment of the label/target section (the blob must start 4-byte aligned), then
 *   fills *out with pointers into buf (no copy; buf must outlive out).
 * - Failures: NULL -> FLT_ERR_ARG; cap < 48 -> FLT_ERR_TRUNCATED; bad magic or header_size,
 *   reserved bytes set, n_targets 0, n_test >= count -> FLT_ERR_FORMAT; version != 1 or unknown
 * target kind -> FLT_ERR_UNSUPPORTED; count 0 or body larger than cap -> FLT_ERR_TRUNCATED; CRC
 * mismatch -> FLT_ERR_CHECKSUM; misaligned buffer -> FLT_ERR_ARG.
 * - flt_data_n_test(n, fraction_ppm): the personal test split of n windows in time order, the
 *   ONE rule (the host writes a blob's n_test with it through fltiny/native, the window store
 *   draws its split with it): the last n_test windows, n_test = n * fraction_ppm / 1e6
 *   rounded half to even, then at least 1 (fraction_ppm > 0) and at most n - 1 when n >= 2;
 *   0 when n < 2. fraction_ppm is capped at 1000000. FLT_DATA_PERSONAL_PPM (30 %) is the
 *   fleet's fraction. Pure, cannot fail; exact for every uint32 n (64-bit product).
 * - The two blobs with this header (this one and the recording, flt_recording.h) are parsed
 *   with two shared steps, the one implementation of what they have in common:
 *   flt_blob_check_prefix(buf, cap, magic, version, header_size) checks, in this order, cap >=
 *   header_size (FLT_ERR_TRUNCATED), the 4-byte magic at 0 (FLT_ERR_FORMAT), the u16 version
 *   at 4 (FLT_ERR_UNSUPPORTED) and the u16 header_size at 6 (FLT_ERR_FORMAT); buf must hold
 *   cap bytes. flt_blob_sections(buf, cap, header_size, body_bytes, count, n_targets,
 *   target_kind, out) locates the int8 body of body_bytes right after the header, its zero
 *   padding to 4 bytes and the int32 labels[count] (FLT_DATA_LABELS) or float32
 *   targets[count][n_targets] (FLT_DATA_TARGETS) after it: the whole blob larger than cap ->
 *   FLT_ERR_TRUNCATED, a CRC-32 of it (after the header) other than the u32 at 40 ->
 *   FLT_ERR_CHECKSUM; on success fills *out with pointers into buf (only then).
 */
#ifndef FLT_DATA_H
#define FLT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#define FLT_DATA_MAGIC "FLTD"
#define FLT_DATA_VERSION 1u
#define FLT_DATA_HEADER_SIZE 48u
#define FLT_DATA_LABELS 0u
#define FLT_DATA_TARGETS 1u
#define FLT_DATA_PERSONAL_PPM 300000u /* the last 30 % of a device's windows: its test split */

typedef struct {
    uint32_t device_id;
    uint32_t count;
    uint32_t n_test; /* the last n_test windows: the personal test split */
    uint32_t window_len;
    uint32_t channels;
    uint32_t window_bytes; /* window_len * channels */
    uint32_t target_kind;
    uint32_t n_targets;
    float input_scale;
    int32_t input_zero_point;
    uint8_t model_hash[8];
    const int8_t *windows;
    const int32_t *labels; /* kind 0 */
    const float *targets;  /* kind 1 */
    size_t total_bytes;
} flt_data_t;

/* The sections of a blob after its header (flt_blob_sections). */
typedef struct {
    const int8_t *body;    /* the windows (data blob) or samples (recording) */
    const int32_t *labels; /* kind 0, else NULL */
    const float *targets;  /* kind 1, else NULL */
    size_t total_bytes;    /* header + body + padding + labels or targets */
} flt_blob_sections_t;

FLT_NODISCARD flt_status_t flt_data_parse(const uint8_t *buf, size_t cap, flt_data_t *out);
uint32_t flt_data_n_test(uint32_t n, uint32_t fraction_ppm);

FLT_NODISCARD flt_status_t flt_blob_check_prefix(const uint8_t *buf, size_t cap,
                                                 const char magic[4], uint32_t version,
                                                 uint32_t header_size);
FLT_NODISCARD flt_status_t flt_blob_sections(const uint8_t *buf, size_t cap, uint32_t header_size,
                                             uint64_t body_bytes, uint32_t count,
                                             uint32_t n_targets, uint32_t target_kind,
                                             flt_blob_sections_t *out);

#endif /* FLT_DATA_H */
