/* flt_recording.c - see flt_recording.h. */
#include "flt_recording.h"

#include "core/flt_bytes.h"
#include "flt_data.h"

flt_status_t flt_recording_parse(const uint8_t *buf, size_t cap, flt_recording_t *out)
{
    FLT_REQUIRE(buf && out, FLT_ERR_ARG);
    FLT_TRY(flt_blob_check_prefix(buf, cap, FLT_RECORDING_MAGIC, FLT_RECORDING_VERSION,
                                  FLT_RECORDING_HEADER_SIZE));
    FLT_REQUIRE(flt_le_get16(buf + 16) == 0u && flt_le_get16(buf + 22) == 0u, FLT_ERR_FORMAT);
    FLT_REQUIRE(buf[20] == FLT_DATA_LABELS || buf[20] == FLT_DATA_TARGETS, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(buf[21] != 0u && buf[21] <= FLT_SAMPLE_MAX_TARGETS, FLT_ERR_FORMAT);
    FLT_REQUIRE(buf[20] != FLT_DATA_LABELS || buf[21] == 1u, FLT_ERR_FORMAT);
    FLT_REQUIRE(((uintptr_t)buf & 3u) == 0u, FLT_ERR_ARG);
    flt_recording_t r;
    r.device_id = flt_le_get32(buf + 8);
    r.count = flt_le_get32(buf + 12);
    r.channels = flt_le_get16(buf + 18);
    r.target_kind = buf[20];
    r.n_targets = buf[21];
    FLT_REQUIRE(r.count > 0u && r.channels > 0u, FLT_ERR_TRUNCATED);
    r.input_scale = flt_le_get_f32(buf + 24);
    r.input_zero_point = (int32_t)flt_le_get32(buf + 28);
    for (unsigned i = 0; i < 8u; ++i) {
        r.model_hash[i] = buf[32 + i];
    }
    r.samples_per_second = flt_le_get32(buf + 44);
    /* labels have n_targets == 1 (checked above): the blob's count * 4 bytes of labels */
    flt_blob_sections_t sec;
    FLT_TRY(flt_blob_sections(buf, cap, FLT_RECORDING_HEADER_SIZE, (uint64_t)r.count * r.channels,
                              r.count, r.n_targets, r.target_kind, &sec));
    r.samples = sec.body;
    r.labels = sec.labels;
    r.targets = sec.targets;
    r.total_bytes = sec.total_bytes;
    *out = r;
    return FLT_OK;
}

flt_status_t flt_recording_sample(const flt_recording_t *rec, uint32_t i, int8_t *values,
                                  flt_sample_label_t *label)
{
    FLT_REQUIRE(rec && values && label, FLT_ERR_ARG);
    FLT_REQUIRE(i < rec->count, FLT_ERR_RANGE);
    const int8_t *s = rec->samples + (size_t)i * rec->channels;
    for (uint32_t c = 0; c < rec->channels; ++c) {
        values[c] = s[c];
    }
    for (uint32_t k = 0; k < FLT_SAMPLE_MAX_TARGETS; ++k) {
        label->targets[k] = 0.0f;
    }
    if (rec->labels != NULL) {
        label->label = rec->labels[i];
    } else {
        label->label = 0;
        for (uint32_t k = 0; k < rec->n_targets; ++k) {
            label->targets[k] = rec->targets[(size_t)i * rec->n_targets + k];
        }
    }
    return FLT_OK;
}
