/* recording.c - libFuzzer harness of the recording reader (flt_recording_parse and
 * flt_recording_sample, firmware/app/flt_recording.c): the samples a recorded-data source
 * replays through the sensor hook (a --data file, a QEMU board's data region).
 *
 * Feeds: byte 0 bit 0 set: the rest is parsed as it is; clear: the harness first writes the
 * right CRC-32 into the header (over the body the header describes, when it fits), so the
 * fuzzer reaches the checks behind the checksum. The recording is a heap copy of exactly its
 * length (4-byte aligned); a copy at an odd address is parsed too.
 * Asserts, beyond memory safety:
 * - the status is one flt_recording.h lists, and the odd copy is never accepted;
 * - on success: count, channels and n_targets >= 1 (n_targets <= FLT_SAMPLE_MAX_TARGETS, 1 with
 *   labels), total_bytes <= the length and equal to the header's description; the samples start
 *   after the header, labels / targets 4-byte aligned after the padded samples;
 * - flt_recording_sample for the first, the last and up to 64 samples in between (every one
 *   when there are fewer) copies exactly the sample's bytes and its label or targets (read in
 *   place: ASan checks they lie inside the recording), zeroes the unused targets, and refuses
 *   i == count with FLT_ERR_RANGE.
 */
#include "core/flt_bytes.h"
#include "flt_data.h"
#include "flt_recording.h"
#include "fuzz.h"
#include "proto/crc32.h"

static int parse_status_ok(flt_status_t s)
{
    return s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
           s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_CHECKSUM || s == FLT_ERR_ARG;
}

static uint64_t described_body(const uint8_t *b, size_t n)
{
    if (n < FLT_RECORDING_HEADER_SIZE) {
        return 0u;
    }
    uint64_t count = flt_le_get32(b + 12);
    uint64_t body = count * flt_le_get16(b + 18);
    return body + ((4u - (body & 3u)) & 3u) + count * b[21] * 4u;
}

static void check_sample(const flt_recording_t *r, uint32_t i)
{
    int8_t *values = (int8_t *)malloc(r->channels);
    flt_sample_label_t label;
    FUZZ_ASSERT(values != NULL);
    FUZZ_ASSERT(flt_recording_sample(r, i, values, &label) == FLT_OK);
    FUZZ_ASSERT(memcmp(values, r->samples + (size_t)i * r->channels, r->channels) == 0);
    if (r->labels != NULL) {
        FUZZ_ASSERT(label.label == r->labels[i]);
        for (uint32_t k = 0; k < FLT_SAMPLE_MAX_TARGETS; ++k) {
            FUZZ_ASSERT(flt_f32_bits(label.targets[k]) == 0u);
        }
    } else {
        FUZZ_ASSERT(label.label == 0);
        for (uint32_t k = 0; k < FLT_SAMPLE_MAX_TARGETS; ++k) {
            uint32_t want =
                k < r->n_targets ? flt_f32_bits(r->targets[(size_t)i * r->n_targets + k]) : 0u;
            FUZZ_ASSERT(flt_f32_bits(label.targets[k]) == want);
        }
    }
    free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    size_t n = size - 1u;
    uint8_t *buf = fuzz_dup(data + 1, n);
    uint64_t body = described_body(buf, n);
    if ((data[0] & 1u) == 0u && n >= FLT_RECORDING_HEADER_SIZE &&
        body <= n - FLT_RECORDING_HEADER_SIZE) {
        flt_le_put32(buf + 40, flt_crc32_update(0u, buf + FLT_RECORDING_HEADER_SIZE, (size_t)body));
    }
    flt_recording_t r;
    flt_status_t s = flt_recording_parse(buf, n, &r);
    FUZZ_ASSERT(parse_status_ok(s));
    if (n > 0u) {
        uint8_t *odd = fuzz_dup_odd(buf, n);
        flt_recording_t o;
        FUZZ_ASSERT(flt_recording_parse(odd, n, &o) != FLT_OK);
        fuzz_free_odd(odd);
    }
    if (s == FLT_OK) {
        FUZZ_ASSERT(r.count >= 1u && r.channels >= 1u && r.n_targets >= 1u &&
                    r.n_targets <= FLT_SAMPLE_MAX_TARGETS);
        FUZZ_ASSERT(r.target_kind == FLT_DATA_TARGETS || r.n_targets == 1u);
        FUZZ_ASSERT(r.total_bytes <= n && r.total_bytes == FLT_RECORDING_HEADER_SIZE + body);
        FUZZ_ASSERT((const uint8_t *)r.samples == buf + FLT_RECORDING_HEADER_SIZE);
        uint64_t sb = (uint64_t)r.count * r.channels;
        const uint8_t *t = buf + FLT_RECORDING_HEADER_SIZE + (size_t)(sb + ((4u - (sb & 3u)) & 3u));
        FUZZ_ASSERT(((uintptr_t)t & 3u) == 0u);
        FUZZ_ASSERT(r.target_kind == FLT_DATA_LABELS
                        ? (r.targets == NULL && (const uint8_t *)r.labels == t)
                        : (r.labels == NULL && (const uint8_t *)r.targets == t));
        uint32_t step = r.count / 64u + 1u;
        for (uint32_t i = 0; i < r.count; i += step) {
            check_sample(&r, i);
        }
        check_sample(&r, r.count - 1u);
        int8_t one[1];
        flt_sample_label_t label;
        FUZZ_ASSERT(flt_recording_sample(&r, r.count, one, &label) == FLT_ERR_RANGE);
    }
    free(buf);
    return 0;
}
