/* flt_data.c - see flt_data.h. */
#include "flt_data.h"

#include "core/flt_bytes.h"
#include "proto/crc32.h"

flt_status_t flt_data_parse(const uint8_t *buf, size_t cap, flt_data_t *out)
{
    FLT_REQUIRE(buf && out, FLT_ERR_ARG);
    FLT_REQUIRE(cap >= FLT_DATA_HEADER_SIZE, FLT_ERR_TRUNCATED);
    FLT_REQUIRE(buf[0] == 'F' && buf[1] == 'L' && buf[2] == 'T' && buf[3] == 'D', FLT_ERR_FORMAT);
    FLT_REQUIRE(flt_le_get16(buf + 4) == FLT_DATA_VERSION, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(flt_le_get16(buf + 6) == FLT_DATA_HEADER_SIZE, FLT_ERR_FORMAT);
    FLT_REQUIRE(flt_le_get16(buf + 22) == 0u, FLT_ERR_FORMAT);
    FLT_REQUIRE(buf[20] == FLT_DATA_LABELS || buf[20] == FLT_DATA_TARGETS, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(buf[21] != 0u, FLT_ERR_FORMAT);
    FLT_REQUIRE(((uintptr_t)buf & 3u) == 0u, FLT_ERR_ARG);
    flt_data_t d;
    d.device_id = flt_le_get32(buf + 8);
    d.count = flt_le_get32(buf + 12);
    d.window_len = flt_le_get16(buf + 16);
    d.channels = flt_le_get16(buf + 18);
    d.window_bytes = d.window_len * d.channels;
    d.target_kind = buf[20];
    d.n_targets = buf[21];
    FLT_REQUIRE(d.count > 0u && d.window_bytes > 0u, FLT_ERR_TRUNCATED);
    d.n_test = flt_le_get32(buf + 44);
    FLT_REQUIRE(d.n_test < d.count, FLT_ERR_FORMAT);
    d.input_scale = flt_le_get_f32(buf + 24);
    d.input_zero_point = (int32_t)flt_le_get32(buf + 28);
    for (unsigned i = 0; i < 8u; ++i) {
        d.model_hash[i] = buf[32 + i];
    }
    /* sizes in 64 bits: count and window sizes come from untrusted bytes */
    uint64_t win = (uint64_t)d.count * d.window_bytes;
    uint64_t pad = (4u - (win & 3u)) & 3u;
    uint64_t tgt = d.target_kind == FLT_DATA_LABELS ? (uint64_t)d.count * 4u
                                                    : (uint64_t)d.count * d.n_targets * 4u;
    uint64_t total = FLT_DATA_HEADER_SIZE + win + pad + tgt;
    FLT_REQUIRE(total <= (uint64_t)cap, FLT_ERR_TRUNCATED);
    uint32_t crc =
        flt_crc32_update(0u, buf + FLT_DATA_HEADER_SIZE, (size_t)(total - FLT_DATA_HEADER_SIZE));
    FLT_REQUIRE(crc == flt_le_get32(buf + 40), FLT_ERR_CHECKSUM);
    d.windows = (const int8_t *)(buf + FLT_DATA_HEADER_SIZE);
    const uint8_t *t = buf + FLT_DATA_HEADER_SIZE + (size_t)(win + pad);
    d.labels = d.target_kind == FLT_DATA_LABELS ? (const int32_t *)(const void *)t : NULL;
    d.targets = d.target_kind == FLT_DATA_TARGETS ? (const float *)(const void *)t : NULL;
    d.total_bytes = (size_t)total;
    *out = d;
    return FLT_OK;
}

uint32_t flt_data_n_test(uint32_t n, uint32_t fraction_ppm)
{
    if (n < 2u) {
        return 0u;
    }
    const uint32_t ppm = fraction_ppm > 1000000u ? 1000000u : fraction_ppm;
    const uint64_t prod = (uint64_t)n * ppm; /* < 2^32 * 2^20: no overflow */
    uint64_t q = prod / 1000000u;
    const uint64_t r = prod % 1000000u;
    if (r > 500000u || (r == 500000u && (q & 1u) != 0u)) {
        q += 1u; /* half to even: Python's round(), which the split was first written with */
    }
    if (q < 1u && ppm > 0u) {
        q = 1u;
    }
    return q > n - 1u ? n - 1u : (uint32_t)q;
}
