/* frame.c - see frame.h for the contract and docs/protocol.md for the byte layout. */
#include "frame.h"

#include "hmac.h"

#define FLT_PROTO_VERSION_SHIFT 6u
#define FLT_PROTO_BIT_FROM_HOST 0x20u
#define FLT_PROTO_BIT_CHUNKED 0x10u
#define FLT_PROTO_TYPE_MASK 0x0fu

int flt_msg_is_control(uint8_t type)
{
    return type == (uint8_t)FLT_MSG_ACK || type == (uint8_t)FLT_MSG_NACK;
}

/* 1 when encode accepts the header (every field decode would accept). */
static int flt_proto_header_ok(const flt_proto_header_t *h)
{
    return h->version == FLT_PROTO_VERSION && h->type >= 1u && h->type <= FLT_MSG_TYPE_MAX &&
           (h->flags & (uint8_t)~FLT_PROTO_FLAGS_KNOWN) == 0u && h->chunk_count >= 1u &&
           h->chunk_index < h->chunk_count && h->payload_len <= FLT_PROTO_MAX_CHUNK;
}

/* Writes the header (at most FLT_PROTO_HEADER_MAX bytes) and returns its length. */
static size_t flt_proto_put_header(uint8_t *p, const flt_proto_header_t *h)
{
    size_t n = 1u;
    p[0] = (uint8_t)((FLT_PROTO_VERSION << FLT_PROTO_VERSION_SHIFT) | h->type);
    if ((h->flags & FLT_PROTO_FLAG_FROM_HOST) != 0u) {
        p[0] = (uint8_t)(p[0] | FLT_PROTO_BIT_FROM_HOST);
    }
    n += flt_varint_put(p + n, h->device_id);
    n += flt_varint_put(p + n, h->seq);
    if (h->chunk_count > 1u) {
        p[0] = (uint8_t)(p[0] | FLT_PROTO_BIT_CHUNKED);
        n += flt_varint_put(p + n, h->chunk_index);
        n += flt_varint_put(p + n, h->chunk_count);
    }
    return n;
}

size_t flt_proto_frame_size(const flt_proto_header_t *h)
{
    size_t n;
    if (h == NULL || !flt_proto_header_ok(h)) {
        return 0u;
    }
    n = 1u + flt_varint_len(h->device_id) + flt_varint_len(h->seq);
    if (h->chunk_count > 1u) {
        n += flt_varint_len(h->chunk_index) + flt_varint_len(h->chunk_count);
    }
    return n + h->payload_len + FLT_PROTO_TAG_SIZE;
}

static void flt_proto_tag(const uint8_t key[FLT_PROTO_KEY_SIZE], const uint8_t *hdr, size_t hdr_len,
                          const uint8_t *payload, size_t payload_len,
                          uint8_t tag[FLT_PROTO_TAG_SIZE])
{
    flt_hmac_t ctx;
    uint8_t mac[FLT_SHA256_DIGEST_SIZE];
    flt_hmac_init(&ctx, key, FLT_PROTO_KEY_SIZE);
    flt_hmac_update(&ctx, hdr, hdr_len);
    flt_hmac_update(&ctx, payload, payload_len);
    flt_hmac_final(&ctx, mac);
    flt_bytes_copy(tag, mac, FLT_PROTO_TAG_SIZE);
    flt_bytes_zero(&ctx, sizeof ctx);
    flt_bytes_zero(mac, sizeof mac);
}

flt_status_t flt_proto_frame_encode(const flt_proto_header_t *h, const uint8_t *payload,
                                    const uint8_t key[FLT_PROTO_KEY_SIZE], uint8_t *out, size_t cap,
                                    size_t *out_len)
{
    uint8_t hdr[FLT_PROTO_HEADER_MAX];
    uint8_t tag[FLT_PROTO_TAG_SIZE];
    size_t hdr_len;
    flt_cobs_enc_t enc;
    size_t n = 0;
    FLT_REQUIRE(h != NULL && key != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(payload != NULL || h->payload_len == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(flt_proto_header_ok(h), FLT_ERR_ARG);
    hdr_len = flt_proto_put_header(hdr, h);
    flt_proto_tag(key, hdr, hdr_len, payload, h->payload_len, tag);
    flt_cobs_enc_begin(&enc, out, cap);
    flt_cobs_enc_put(&enc, hdr, hdr_len);
    flt_cobs_enc_put(&enc, payload, h->payload_len);
    flt_cobs_enc_put(&enc, tag, sizeof tag);
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
    size_t pos = 1u;
    uint32_t index = 0u;
    uint32_t count = 1u;
    FLT_REQUIRE(frame != NULL && key != NULL && h != NULL && payload != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_PROTO_OVERHEAD_MIN, FLT_ERR_TRUNCATED);
    FLT_REQUIRE((frame[0] >> FLT_PROTO_VERSION_SHIFT) == FLT_PROTO_VERSION, FLT_ERR_UNSUPPORTED);
    body = len - FLT_PROTO_TAG_SIZE; /* header + payload */
    flt_proto_tag(key, frame, body, NULL, 0u, tag);
    FLT_REQUIRE(flt_ct_equal(tag, frame + body, FLT_PROTO_TAG_SIZE), FLT_ERR_AUTH);
    h->version = FLT_PROTO_VERSION;
    h->type = (uint8_t)(frame[0] & FLT_PROTO_TYPE_MASK);
    h->flags = (frame[0] & FLT_PROTO_BIT_FROM_HOST) != 0u ? FLT_PROTO_FLAG_FROM_HOST : 0u;
    FLT_REQUIRE(h->type >= 1u && h->type <= FLT_MSG_TYPE_MAX, FLT_ERR_UNSUPPORTED);
    FLT_TRY(flt_varint_get(frame, body, &pos, &h->device_id));
    FLT_TRY(flt_varint_get(frame, body, &pos, &h->seq));
    if ((frame[0] & FLT_PROTO_BIT_CHUNKED) != 0u) {
        FLT_TRY(flt_varint_get(frame, body, &pos, &index));
        FLT_TRY(flt_varint_get(frame, body, &pos, &count));
        FLT_REQUIRE(count >= 2u && count <= 0xffffu && index < count, FLT_ERR_FORMAT);
    }
    h->chunk_index = (uint16_t)index;
    h->chunk_count = (uint16_t)count;
    FLT_REQUIRE(body - pos <= FLT_PROTO_MAX_CHUNK, FLT_ERR_OVERSIZE);
    h->payload_len = (uint16_t)(body - pos);
    *payload = frame + pos;
    return FLT_OK;
}
