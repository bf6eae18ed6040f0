/* data_blob.c - libFuzzer harness of the data blob reader (flt_data_parse, firmware/app/
 * flt_data.c): the device's local data, from a file, a flash region or a host upload.
 *
 * Feeds: byte 0 bit 0 set: the rest is parsed as it is; clear: the harness first writes the
 * right CRC-32 into the header (over the body the header describes, when it fits), so the
 * fuzzer reaches the checks behind the checksum. The blob is a heap copy of exactly its length
 * (4-byte aligned, as the reader requires).
 * Asserts, beyond memory safety:
 * - the status is one flt_data.h lists; a copy at an odd address is never accepted;
 * - on success: count >= 1, n_test < count, window_bytes = window_len * channels >= 1;
 *   total_bytes <= the length; the windows start after the header, the labels / targets
 *   4-byte aligned after the zero-padded windows and within total_bytes; exactly one of labels
 *   and targets is set, as the target kind says; every window byte and label / target is read
 *   (ASan checks each lies inside the blob);
 * - flt_data_n_test(count, ppm) (ppm: the input's last 4 bytes) is at most count - 1 (0 below 2
 * windows) and at least 1 for a nonzero fraction and count >= 2.
 */
#include "core/flt_bytes.h"
#include "flt_data.h"
#include "fuzz.h"
#include "proto/crc32.h"

static int parse_status_ok(flt_status_t s)
{
    return s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
           s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_CHECKSUM || s == FLT_ERR_ARG;
}

/* The body length the header describes (saturating), or 0 when it cannot be computed. */
static uint64_t described_body(const uint8_t *b, size_t n)
{
    if (n < FLT_DATA_HEADER_SIZE) {
        return 0u;
    }
    uint64_t count = flt_le_get32(b + 12);
    uint64_t win = count * flt_le_get16(b + 16) * flt_le_get16(b + 18);
    uint64_t pad = (4u - (win & 3u)) & 3u;
    uint64_t tgt = b[20] == FLT_DATA_LABELS ? count * 4u : count * b[21] * 4u;
    return win + pad + tgt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    size_t n = size - 1u;
    uint8_t *blob = fuzz_dup(data + 1, n);
    uint64_t body = described_body(blob, n);
    if ((data[0] & 1u) == 0u && n >= FLT_DATA_HEADER_SIZE && body <= n - FLT_DATA_HEADER_SIZE) {
        flt_le_put32(blob + 40, flt_crc32_update(0u, blob + FLT_DATA_HEADER_SIZE, (size_t)body));
    }
    flt_data_t d;
    flt_status_t s = flt_data_parse(blob, n, &d);
    FUZZ_ASSERT(parse_status_ok(s));
    if (n > 0u) {
        uint8_t *odd = fuzz_dup_odd(blob, n);
        flt_data_t o;
        FUZZ_ASSERT(flt_data_parse(odd, n, &o) != FLT_OK);
        fuzz_free_odd(odd);
    }
    if (s == FLT_OK) {
        FUZZ_ASSERT(d.count >= 1u && d.n_test < d.count && d.window_bytes >= 1u &&
                    d.window_bytes == d.window_len * d.channels);
        FUZZ_ASSERT(d.total_bytes <= n && d.total_bytes == FLT_DATA_HEADER_SIZE + body);
        FUZZ_ASSERT((const uint8_t *)d.windows == blob + FLT_DATA_HEADER_SIZE);
        uint64_t win = (uint64_t)d.count * d.window_bytes;
        const uint8_t *t = blob + FLT_DATA_HEADER_SIZE + (size_t)(win + ((4u - (win & 3u)) & 3u));
        uint32_t acc = 0;
        for (uint64_t i = 0; i < win; ++i) {
            acc += (uint8_t)d.windows[i];
        }
        if (d.target_kind == FLT_DATA_LABELS) {
            FUZZ_ASSERT(d.targets == NULL && (const uint8_t *)d.labels == t);
            for (uint32_t i = 0; i < d.count; ++i) {
                acc += (uint32_t)d.labels[i];
            }
        } else {
            FUZZ_ASSERT(d.target_kind == FLT_DATA_TARGETS && d.labels == NULL &&
                        (const uint8_t *)d.targets == t);
            for (uint64_t i = 0; i < (uint64_t)d.count * d.n_targets; ++i) {
                acc += flt_f32_bits(d.targets[i]);
            }
        }
        FUZZ_ASSERT(((uintptr_t)t & 3u) == 0u);
        volatile uint32_t sink = acc;
        (void)sink;
        uint32_t ppm = size >= 5u ? flt_le_get32(data + size - 4u) : FLT_DATA_PERSONAL_PPM;
        uint32_t k = flt_data_n_test(d.count, ppm);
        FUZZ_ASSERT(d.count < 2u ? k == 0u : (k <= d.count - 1u && (ppm == 0u || k >= 1u)));
    }
    free(blob);
    return 0;
}
