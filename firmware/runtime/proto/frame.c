#include "frame.h"

#include "crc32.h"
#include "hmac.h"

int flt_msg_is_control(uint8_t type)
{
    return type == (uint8_t)FLT_MSG_ACK || type == (uint8_t)FLT_MSG_NACK;
}

static void flt_proto_put_header(uint8_t *p, const flt_proto_header_t *h)
{
    p[0] = h->version;
    p[1] = h->type;
    p[2] = h->flags;
    p[3] = 0; /* reserved */
    flt_le_put32(p + 4, h->device_id);
    flt_le_put32(p + 8, h->seq);
    flt_le_put16(p + 12, h->chunk_index);
    flt_le_put16(p + 14, h->chunk_count);
    flt_le_put16(p + 16, h->payload_len);
}

static void flt_proto_tag(const uint8_t key[FLT_PROTO_KEY_SIZE], const uint8_t *hdr,
                          const uint8_t *payload, size_t payload_len,
                          uint8_t tag[FLT_PROTO_TAG_SIZE])
{
    flt_hmac_t ctx;
    uint8_t mac[FLT_SHA256_DIGEST_SIZE];
    flt_hmac_init(&ctx, key, FLT_PROTO_KEY_SIZE);
    flt_hmac_update(&ctx, hdr, FLT_PROTO_HEADER_SIZE);
    flt_hmac_update(&ctx, payload, payload_len);
    flt_hmac_final(&ctx, mac);
    flt_bytes_copy(tag, mac, FLT_PROTO_TAG_SIZE);
    flt_bytes_zero(&ctx, sizeof ctx);
}

flt_status_t flt_proto_frame_encode(const flt_proto_header_t *h, const uint8_t *payload,
                                    const uint8_t key[FLT_PROTO_KEY_SIZE], uint8_t *out, size_t cap,
                                    size_t *out_len)
{
    uint8_t hdr[FLT_PROTO_HEADER_SIZE];
    uint8_t tag[FLT_PROTO_TAG_SIZE];
    uint8_t crc_le[FLT_PROTO_CRC_SIZE];
    uint32_t crc;
    flt_cobs_enc_t enc;
    size_t n = 0;
    FLT_REQUIRE(h != NULL && key != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(payload != NULL || h->payload_len == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(h->version == FLT_PROTO_VERSION, FLT_ERR_ARG);
    FLT_REQUIRE(h->type >= 1u && h->type <= FLT_MSG_TYPE_MAX, FLT_ERR_ARG);
    FLT_REQUIRE((h->flags & (uint8_t)~FLT_PROTO_FLAGS_KNOWN) == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(h->chunk_count >= 1u && h->chunk_index < h->chunk_count, FLT_ERR_ARG);
    FLT_REQUIRE(h->payload_len <= FLT_PROTO_MAX_CHUNK, FLT_ERR_ARG);
    flt_proto_put_header(hdr, h);
    flt_proto_tag(key, hdr, payload, h->payload_len, tag);
    crc = flt_crc32_update(0, hdr, sizeof hdr);
    crc = flt_crc32_update(crc, payload, h->payload_len);
    crc = flt_crc32_update(crc, tag, sizeof tag);
    flt_le_put32(crc_le, crc);
    flt_cobs_enc_begin(&enc, out, cap);
    flt_cobs_enc_put(&enc, hdr, sizeof hdr);
    flt_cobs_enc_put(&enc, payload, h->payload_len);
    flt_cobs_enc_put(&enc, tag, sizeof tag);
    flt_cobs_enc_put(&enc, crc_le, sizeof crc_le);
    FLT_TRY(flt_cobs_enc_end(&enc, &n));
    FLT_REQUIRE(n < cap, FLT_ERR_NOMEM);
    out[n] = 0; /* delimiter */
    *out_len = n + 1u;
    return FLT_OK;
}

flt_status_t flt_proto_frame_decode(const uint8_t *frame, size_t len,
                                    const uint8_t key[FLT_PROTO_KEY_SIZE], flt_proto_header_t *h,
                                    const uint8_t **payload)
{
    uint8_t tag[FLT_PROTO_TAG_SIZE];
    size_t body;
    FLT_REQUIRE(frame != NULL && key != NULL && h != NULL && payload != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_PROTO_OVERHEAD, FLT_ERR_TRUNCATED);
    body = len - FLT_PROTO_CRC_SIZE;
    FLT_REQUIRE(flt_crc32_update(0, frame, body) == flt_le_get32(frame + body), FLT_ERR_CHECKSUM);
    body -= FLT_PROTO_TAG_SIZE; /* header + payload */
    flt_proto_tag(key, frame, frame + FLT_PROTO_HEADER_SIZE, body - FLT_PROTO_HEADER_SIZE, tag);
    FLT_REQUIRE(flt_ct_equal(tag, frame + body, FLT_PROTO_TAG_SIZE), FLT_ERR_AUTH);
    h->version = frame[0];
    h->type = frame[1];
    h->flags = frame[2];
    h->device_id = flt_le_get32(frame + 4);
    h->seq = flt_le_get32(frame + 8);
    h->chunk_index = flt_le_get16(frame + 12);
    h->chunk_count = flt_le_get16(frame + 14);
    h->payload_len = flt_le_get16(frame + 16);
    FLT_REQUIRE(h->version == FLT_PROTO_VERSION, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(h->type >= 1u && h->type <= FLT_MSG_TYPE_MAX, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE((h->flags & (uint8_t)~FLT_PROTO_FLAGS_KNOWN) == 0u && frame[3] == 0u,
                FLT_ERR_FORMAT);
    FLT_REQUIRE(h->chunk_count >= 1u && h->chunk_index < h->chunk_count, FLT_ERR_FORMAT);
    FLT_REQUIRE(h->payload_len <= FLT_PROTO_MAX_CHUNK, FLT_ERR_OVERSIZE);
    FLT_REQUIRE((size_t)h->payload_len + FLT_PROTO_HEADER_SIZE <= body, FLT_ERR_TRUNCATED);
    FLT_REQUIRE((size_t)h->payload_len + FLT_PROTO_HEADER_SIZE == body, FLT_ERR_FORMAT);
    *payload = frame + FLT_PROTO_HEADER_SIZE;
    return FLT_OK;
}
