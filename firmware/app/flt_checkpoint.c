#include "flt_checkpoint.h"

#include "core/flt_bits.h"
#include "core/flt_bytes.h"
#include "proto/crc32.h"

flt_status_t flt_ckpt_encode(const flt_ckpt_t *ck, uint32_t n, uint8_t *buf, size_t cap)
{
    FLT_REQUIRE(ck != NULL && buf != NULL && ck->params != NULL && ck->residual != NULL,
                FLT_ERR_ARG);
    FLT_REQUIRE(n > 0u && n <= FLT_CKPT_MAX_PARAMS, FLT_ERR_ARG);
    FLT_REQUIRE(cap >= FLT_CKPT_SIZE(n), FLT_ERR_NOMEM);
    uint8_t *body = buf + FLT_CKPT_HEADER;
    for (uint32_t i = 0; i < n; ++i) {
        flt_le_put_f32(body + 4u * i, ck->params[i]);
        flt_le_put_f32(body + 4u * (n + i), ck->residual[i]);
    }
    flt_le_put32(buf, FLT_CKPT_MAGIC);
    flt_le_put32(buf + 4, ck->model_version);
    flt_le_put32(buf + 8, ck->committed_round);
    flt_le_put32(buf + 12, n);
    flt_le_put32(buf + 16, flt_crc32_update(0u, body, 8u * n));
    return FLT_OK;
}

flt_status_t flt_ckpt_decode(const uint8_t *buf, size_t len, uint32_t n, flt_ckpt_t *ck)
{
    FLT_REQUIRE(buf != NULL && ck != NULL && ck->params != NULL && ck->residual != NULL,
                FLT_ERR_ARG);
    FLT_REQUIRE(n > 0u && n <= FLT_CKPT_MAX_PARAMS, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_CKPT_SIZE(n), FLT_ERR_TRUNCATED);
    FLT_REQUIRE(len == FLT_CKPT_SIZE(n), FLT_ERR_OVERSIZE);
    FLT_REQUIRE(flt_le_get32(buf) == FLT_CKPT_MAGIC, FLT_ERR_FORMAT);
    FLT_REQUIRE(flt_le_get32(buf + 12) == n, FLT_ERR_SHAPE);
    const uint8_t *body = buf + FLT_CKPT_HEADER;
    FLT_REQUIRE(flt_le_get32(buf + 16) == flt_crc32_update(0u, body, 8u * n), FLT_ERR_CHECKSUM);
    for (uint32_t i = 0; i < 2u * n; ++i) {
        FLT_REQUIRE(flt_f32_bits_finite(flt_le_get32(body + 4u * i)), FLT_ERR_NONFINITE);
    }
    ck->model_version = flt_le_get32(buf + 4);
    ck->committed_round = flt_le_get32(buf + 8);
    for (uint32_t i = 0; i < n; ++i) {
        ck->params[i] = flt_le_get_f32(body + 4u * i);
        ck->residual[i] = flt_le_get_f32(body + 4u * (n + i));
    }
    return FLT_OK;
}
