/* flt_recording.h - a recording of samples (format: docs/boards.md "Recording"): what a
 * recorded-data source replays through the sensor hook in place of a sensor (the native board's
 * --data file, the QEMU boards' data region; firmware/ports/common/flt_recorded_sensor.h).
 *
 * Layout, version 1, little-endian, 48-byte header (the data blob's, flt_data.h, where a field
 * means the same; the device id sits at the same offset):
 *   0  "FLTR"           4  u16 version = 1     6  u16 header_size = 48
 *   8  u32 device_id    12 u32 count (samples, i.e. time steps)
 *   16 u16 0 (reserved) 18 u16 channels (int8 values per sample)
 *   20 u8 target_kind (0: int32 labels, 1: float32 targets)   21 u8 n_targets   22 u16 0
 *   24 f32 input_scale  28 i32 input_zero_point (the quantization of the samples)
 *   32 u8[8] model_hash (first 8 bytes of sha256(backbone.tflite))
 *   40 u32 body_crc32 (IEEE CRC-32 of every byte after the header)
 *   44 u32 samples_per_second: the pace of the replay (0: every sample at once)
 *   48 int8 samples[count][channels], zero-padded to a multiple of 4 bytes, then int32
 *      labels[count] (kind 0; FLT_SAMPLE_UNLABELLED = -1 for a step without a label) or float32
 *      targets[count][n_targets] (kind 1, every step labelled).
 *
 * Contract
 * - flt_recording_parse(buf, cap, out) checks the header against cap, the CRC of the body and
 *   the 4-byte alignment of buf, then fills *out with pointers into buf (no copy; buf must
 *   outlive out). Failures: NULL -> FLT_ERR_ARG; cap < 48 -> FLT_ERR_TRUNCATED; bad magic or
 *   header_size, reserved bytes set, n_targets 0 or above FLT_SAMPLE_MAX_TARGETS, labels with
 *   n_targets != 1 -> FLT_ERR_FORMAT; version != 1 or unknown target kind ->
 *   FLT_ERR_UNSUPPORTED; count or channels 0, or the body larger than cap -> FLT_ERR_TRUNCATED;
 *   CRC mismatch -> FLT_ERR_CHECKSUM; misaligned buf -> FLT_ERR_ARG. *out is written on
 *   success only.
 * - flt_recording_sample(rec, i, values, label) copies sample i (channels int8 values) and its
 *   label (flt_sample.h: kind 0 the label, kind 1 label 0 and the targets). i >= count ->
 *   FLT_ERR_RANGE, NULL -> FLT_ERR_ARG (nothing written).
 */
#ifndef FLT_RECORDING_H
#define FLT_RECORDING_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "flt_sample.h"

#define FLT_RECORDING_MAGIC "FLTR"
#define FLT_RECORDING_VERSION 1u
#define FLT_RECORDING_HEADER_SIZE 48u

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t device_id;
    uint32_t count; /* samples */
    uint32_t channels;
    uint32_t target_kind; /* FLT_DATA_LABELS / FLT_DATA_TARGETS */
    uint32_t n_targets;
    uint32_t samples_per_second; /* 0: all at once */
    float input_scale;
    int32_t input_zero_point;
    uint8_t model_hash[8];
    const int8_t *samples;
    const int32_t *labels; /* kind 0 */
    const float *targets;  /* kind 1 */
    size_t total_bytes;
} flt_recording_t;

FLT_NODISCARD flt_status_t flt_recording_parse(const uint8_t *buf, size_t cap,
                                               flt_recording_t *out);
FLT_NODISCARD flt_status_t flt_recording_sample(const flt_recording_t *rec, uint32_t i,
                                                int8_t *values, flt_sample_label_t *label);

#ifdef __cplusplus
}
#endif

#endif /* FLT_RECORDING_H */
