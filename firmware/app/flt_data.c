/* flt_data.c - see flt_data.h. */
#include "flt_data.h"

#include "core/flt_bytes.h"
#include "proto/crc32.h"

flt_status_t flt_blob_check_prefix(const uint8_t *buf, size_t cap, const char magic[4],
                                   uint32_t version, uint32_t header_size)
{
    FLT_REQUIRE(cap >= header_size, FLT_ERR_TRUNCATED);
    FLT_REQUIRE(buf[0] == (uint8_t)magic[0] && buf[1] == (uint8_t)magic[1] &&
                    buf[2] == (uint8_t)magic[2] && buf[3] == (uint8_t)magic[3],
                FLT_ERR_FORMAT);
    FLT_REQUIRE(flt_le_get16(buf + 4) == version, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(flt_le_get16(buf + 6) == header_size, FLT_ERR_FORMAT);
    return FLT_OK;
}

flt_status_t flt_blob_sections(const uint8_t *buf, size_t cap, uint32_t header_size,
                               uint64_t body_bytes, uint32_t count, uint32_t n_targets,
                               uint32_t target_kind, flt_blob_sections_t *out)
{
    /* sizes in 64 bits: count, n_targets and the body size come from untrusted bytes */
    uint64_t pad = (4u - (body_bytes & 3u)) & 3u;
    uint64_t tgt =
        target_kind == FLT_DATA_LABELS ? (uint64_t)count * 4u : (uint64_t)count * n_targets * 4u;
    uint64_t total = header_size + body_bytes + pad + tgt;
    FLT_REQUIRE(total <= (uint64_t)cap, FLT_ERR_TRUNCATED);
    uint32_t crc = flt_crc32_update(0u, buf + header_size, (size_t)(total - header_size));
    FLT_REQUIRE(crc == flt_le_get32(buf + 40), FLT_ERR_CHECKSUM);
    const uint8_t *t = buf + header_size + (size_t)(body_bytes + pad);
    out->body = (const int8_t *)(buf + header_size);
    out->labels = target_kind == FLT_DATA_LABELS ? (const int32_t *)(const void *)t : NULL;
    out->targets = target_kind == FLT_DATA_TARGETS ? (const float *)(const void *)t : NULL;
    out->total_bytes = (size_t)total;
    return FLT_OK;
}

flt_status_t flt_data_parse(const uint8_t *buf, size_t cap, flt_data_t *out)
{
    FLT_REQUIRE(buf && out, FLT_ERR_ARG);
    FLT_TRY(
        flt_blob_check_prefix(buf, cap, FLT_DATA_MAGIC, FLT_DATA_VERSION, FLT_DATA_HEADER_SIZE));
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
    flt_blob_sections_t sec;
    FLT_TRY(flt_blob_sections(buf, cap, FLT_DATA_HEADER_SIZE, (uint64_t)d.count * d.window_bytes,
                              d.count, d.n_targets, d.target_kind, &sec));
    d.windows = sec.body;
    d.labels = sec.labels;
    d.targets = sec.targets;
    d.total_bytes = sec.total_bytes;
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
