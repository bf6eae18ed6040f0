#include "messages.h"

/* Checks a float given as bits: NONFINITE first, then the range test `ok`. */
#define FLT_CHECK_F32(bits, ok)                                    \
    do {                                                           \
        FLT_REQUIRE(flt_f32_bits_finite(bits), FLT_ERR_NONFINITE); \
        FLT_REQUIRE(ok, FLT_ERR_RANGE);                            \
    } while (0)

static flt_status_t flt_fixed_len(size_t len, size_t want)
{
    FLT_REQUIRE(len >= want, FLT_ERR_TRUNCATED);
    FLT_REQUIRE(len == want, FLT_ERR_FORMAT);
    return FLT_OK;
}

/* ---- HELLO ---------------------------------------------------------------------------- */

static flt_status_t flt_hello_check_name(const uint8_t *p, size_t *name_len)
{
    size_t n = 0, i;
    while (n < FLT_MSG_NAME_SIZE && p[n] != 0u) {
        FLT_REQUIRE(p[n] >= 0x20u && p[n] <= 0x7Eu, FLT_ERR_FORMAT);
        n++;
    }
    FLT_REQUIRE(n >= 1u, FLT_ERR_FORMAT);
    for (i = n; i < FLT_MSG_NAME_SIZE; ++i) {
        FLT_REQUIRE(p[i] == 0u, FLT_ERR_FORMAT);
    }
    *name_len = n;
    return FLT_OK;
}

flt_status_t flt_msg_hello_encode(const flt_msg_hello_t *m, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    uint8_t name[FLT_MSG_NAME_SIZE];
    size_t n = 0;
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    flt_bytes_zero(name, sizeof name);
    while (n < sizeof m->name && m->name[n] != '\0') {
        n++;
    }
    FLT_REQUIRE(n <= FLT_MSG_NAME_SIZE, FLT_ERR_FORMAT);
    flt_bytes_copy(name, m->name, n);
    FLT_TRY(flt_hello_check_name(name, &n));
    FLT_REQUIRE(cap >= FLT_MSG_HELLO_SIZE, FLT_ERR_NOMEM);
    flt_bytes_copy(out, name, FLT_MSG_NAME_SIZE);
    flt_le_put32(out + 16, m->capabilities);
    flt_le_put32(out + 20, m->firmware_version);
    flt_bytes_copy(out + 24, m->model_hash, FLT_MSG_HASH_SIZE);
    flt_le_put32(out + 32, m->model_version);
    flt_le_put32(out + 36, m->head_params);
    flt_le_put32(out + 40, m->free_ram);
    flt_le_put32(out + 44, m->host_seq);
    *out_len = FLT_MSG_HELLO_SIZE;
    return FLT_OK;
}

flt_status_t flt_msg_hello_decode(const uint8_t *buf, size_t len, flt_msg_hello_t *m)
{
    size_t n = 0;
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_fixed_len(len, FLT_MSG_HELLO_SIZE));
    FLT_TRY(flt_hello_check_name(buf, &n));
    flt_bytes_zero(m->name, sizeof m->name);
    flt_bytes_copy(m->name, buf, n);
    m->capabilities = flt_le_get32(buf + 16);
    m->firmware_version = flt_le_get32(buf + 20);
    flt_bytes_copy(m->model_hash, buf + 24, FLT_MSG_HASH_SIZE);
    m->model_version = flt_le_get32(buf + 32);
    m->head_params = flt_le_get32(buf + 36);
    m->free_ram = flt_le_get32(buf + 40);
    m->host_seq = flt_le_get32(buf + 44);
    return FLT_OK;
}

/* ---- GLOBAL and DELTA ----------------------------------------------------------------- */

static flt_status_t flt_delta_body_check(const uint8_t *body, size_t len)
{
    FLT_REQUIRE(len >= FLT_MSG_DELTA_PAYLOAD_MIN, FLT_ERR_TRUNCATED);
    /* the payload's version nibble (3): a version-2 payload ("FD...") is refused here */
    FLT_REQUIRE((body[0] >> 4) == FLT_MSG_DELTA_PAYLOAD_VERSION, FLT_ERR_FORMAT);
    return FLT_OK;
}

static flt_status_t flt_global_check(const flt_msg_global_t *m)
{
    size_t i;
    if (m->kind == (uint8_t)FLT_GLOBAL_FULL) {
        FLT_REQUIRE(m->base_version == 0u, FLT_ERR_FORMAT);
        FLT_REQUIRE(m->body_len > 0u && m->body_len % 4u == 0u, FLT_ERR_FORMAT);
        for (i = 0; i < m->body_len; i += 4u) {
            FLT_REQUIRE(flt_f32_bits_finite(flt_le_get32(m->body + i)), FLT_ERR_NONFINITE);
        }
        return FLT_OK;
    }
    FLT_REQUIRE(m->kind == (uint8_t)FLT_GLOBAL_DELTA, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(m->base_version < m->model_version, FLT_ERR_RANGE);
    return flt_delta_body_check(m->body, m->body_len);
}

flt_status_t flt_msg_global_encode(const flt_msg_global_t *m, uint8_t *out, size_t cap,
                                   size_t *out_len)
{
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(m->body != NULL || m->body_len == 0u, FLT_ERR_ARG);
    FLT_TRY(flt_global_check(m));
    FLT_REQUIRE(cap >= FLT_MSG_GLOBAL_HEADER_SIZE &&
                    m->body_len <= cap - FLT_MSG_GLOBAL_HEADER_SIZE,
                FLT_ERR_NOMEM);
    flt_le_put32(out, m->model_version);
    flt_le_put32(out + 4, m->base_version);
    out[8] = m->kind;
    out[9] = 0;
    out[10] = 0;
    out[11] = 0;
    flt_bytes_copy(out + FLT_MSG_GLOBAL_HEADER_SIZE, m->body, m->body_len);
    *out_len = FLT_MSG_GLOBAL_HEADER_SIZE + m->body_len;
    return FLT_OK;
}

flt_status_t flt_msg_global_decode(const uint8_t *buf, size_t len, flt_msg_global_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_MSG_GLOBAL_HEADER_SIZE, FLT_ERR_TRUNCATED);
    m->model_version = flt_le_get32(buf);
    m->base_version = flt_le_get32(buf + 4);
    m->kind = buf[8];
    FLT_REQUIRE(buf[9] == 0u && buf[10] == 0u && buf[11] == 0u, FLT_ERR_FORMAT);
    m->body = buf + FLT_MSG_GLOBAL_HEADER_SIZE;
    m->body_len = len - FLT_MSG_GLOBAL_HEADER_SIZE;
    return flt_global_check(m);
}

float flt_msg_global_param(const flt_msg_global_t *m, size_t i)
{
    return flt_le_get_f32(m->body + 4u * i);
}

static flt_status_t flt_delta_check(const flt_msg_delta_t *m)
{
    FLT_REQUIRE(m->examples >= 1u, FLT_ERR_RANGE);
    FLT_CHECK_F32(flt_f32_bits(m->loss), m->loss >= 0.0f);
    FLT_CHECK_F32(flt_f32_bits(m->personal_metric),
                  m->personal_metric >= 0.0f && (m->personal_n > 0u || m->personal_metric == 0.0f));
    if (m->body_len == 0u) {
        return FLT_OK; /* a masked round (TRAIN SECAGG): the update travels in SECAGG */
    }
    return flt_delta_body_check(m->body, m->body_len);
}

/* DELTA head (docs/protocol.md "DELTA"): round, base_version, examples as varints | loss f32 |
 * personal_n varint | personal_metric f32 only when personal_n > 0. */
static size_t flt_delta_head_len(const flt_msg_delta_t *m)
{
    return (size_t)flt_varint_len(m->round) + flt_varint_len(m->base_version) +
           flt_varint_len(m->examples) + 4u + flt_varint_len(m->personal_n) +
           (m->personal_n > 0u ? 4u : 0u);
}

flt_status_t flt_msg_delta_encode(const flt_msg_delta_t *m, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    size_t h;
    size_t i;
    uint8_t *p;
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(m->body != NULL || m->body_len == 0u, FLT_ERR_ARG);
    FLT_TRY(flt_delta_check(m));
    h = flt_delta_head_len(m);
    FLT_REQUIRE(cap >= h && m->body_len <= cap - h, FLT_ERR_NOMEM);
    /* a body inside out starts at or after out + FLT_MSG_DELTA_HEADER_MAX >= out + h (the
     * contract): the head written first ends before it, and the forward move below reads
     * every body byte before it is overwritten */
    p = out;
    p += flt_varint_put(p, m->round);
    p += flt_varint_put(p, m->base_version);
    p += flt_varint_put(p, m->examples);
    flt_le_put_f32(p, m->loss);
    p += 4;
    p += flt_varint_put(p, m->personal_n);
    if (m->personal_n > 0u) {
        flt_le_put_f32(p, m->personal_metric);
    }
    if (out + h != m->body) {
        for (i = 0; i < m->body_len; ++i) {
            out[h + i] = m->body[i];
        }
    }
    *out_len = h + m->body_len;
    return FLT_OK;
}

static flt_status_t flt_get_f32(const uint8_t *buf, size_t len, size_t *pos, float *v)
{
    FLT_REQUIRE(len - *pos >= 4u, FLT_ERR_TRUNCATED);
    *v = flt_le_get_f32(buf + *pos);
    *pos += 4u;
    return FLT_OK;
}

flt_status_t flt_msg_delta_decode(const uint8_t *buf, size_t len, flt_msg_delta_t *m)
{
    size_t pos = 0;
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_varint_get(buf, len, &pos, &m->round));
    FLT_TRY(flt_varint_get(buf, len, &pos, &m->base_version));
    FLT_TRY(flt_varint_get(buf, len, &pos, &m->examples));
    FLT_TRY(flt_get_f32(buf, len, &pos, &m->loss));
    FLT_TRY(flt_varint_get(buf, len, &pos, &m->personal_n));
    m->personal_metric = 0.0f;
    if (m->personal_n > 0u) {
        FLT_TRY(flt_get_f32(buf, len, &pos, &m->personal_metric));
    }
    m->body = buf + pos;
    m->body_len = len - pos;
    return flt_delta_check(m);
}

/* ---- TRAIN ---------------------------------------------------------------------------- */

static flt_status_t flt_train_check(const flt_msg_train_t *m)
{
    uint32_t b;
    FLT_REQUIRE(m->epochs >= 1u, FLT_ERR_RANGE);
    FLT_REQUIRE(m->topk_kind <= (uint8_t)FLT_TOPK_FRACTION, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(m->batch_size >= 1u, FLT_ERR_RANGE);
    b = flt_f32_bits(m->learning_rate);
    FLT_CHECK_F32(b, m->learning_rate > 0.0f);
    b = flt_f32_bits(m->momentum);
    FLT_CHECK_F32(b, m->momentum >= 0.0f && m->momentum < 1.0f);
    b = flt_f32_bits(m->prox_mu);
    FLT_CHECK_F32(b, m->prox_mu >= 0.0f);
    b = flt_f32_bits(m->clip);
    FLT_CHECK_F32(b, m->clip >= 0.0f);
    if (m->topk_kind == (uint8_t)FLT_TOPK_COUNT) {
        FLT_REQUIRE(m->topk_count >= 1u, FLT_ERR_RANGE);
    } else {
        b = flt_f32_bits(m->topk_fraction);
        FLT_CHECK_F32(b, m->topk_fraction > 0.0f && m->topk_fraction <= 1.0f);
    }
    FLT_REQUIRE((m->flags & ~FLT_TRAIN_FLAGS_KNOWN) == 0u, FLT_ERR_UNSUPPORTED);
    b = (m->flags & FLT_TRAIN_BITS_MASK) >> FLT_TRAIN_BITS_SHIFT;
    FLT_REQUIRE(b == 0u || (b >= 2u && b <= 8u), FLT_ERR_RANGE);
    b = (m->flags & FLT_TRAIN_CHECK_MASK) >> FLT_TRAIN_CHECK_SHIFT;
    FLT_REQUIRE(b <= FLT_TRAIN_CHECK_MAX, FLT_ERR_RANGE);
    if ((m->flags & FLT_TRAIN_LOCAL_DP) != 0u) {
        b = flt_f32_bits(m->ldp_clip);
        FLT_CHECK_F32(b, m->ldp_clip > 0.0f);
        b = flt_f32_bits(m->ldp_noise);
        FLT_CHECK_F32(b, m->ldp_noise > 0.0f);
    } else {
        FLT_REQUIRE(m->ldp_clip == 0.0f && m->ldp_noise == 0.0f, FLT_ERR_RANGE);
    }
    return FLT_OK;
}

static size_t train_size(uint32_t flags)
{
    return (flags & FLT_TRAIN_LOCAL_DP) != 0u ? FLT_MSG_TRAIN_LDP_SIZE : FLT_MSG_TRAIN_SIZE;
}

flt_status_t flt_msg_train_encode(const flt_msg_train_t *m, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_check(m));
    const size_t size = train_size(m->flags);
    FLT_REQUIRE(cap >= size, FLT_ERR_NOMEM);
    flt_le_put32(out, m->round);
    out[4] = m->epochs;
    out[5] = m->topk_kind;
    flt_le_put16(out + 6, m->batch_size);
    flt_le_put_f32(out + 8, m->learning_rate);
    flt_le_put_f32(out + 12, m->momentum);
    flt_le_put_f32(out + 16, m->prox_mu);
    flt_le_put_f32(out + 20, m->clip);
    flt_le_put32(out + 24, m->topk_kind == (uint8_t)FLT_TOPK_COUNT
                               ? m->topk_count
                               : flt_f32_bits(m->topk_fraction));
    flt_le_put32(out + 28, m->seed);
    flt_le_put32(out + 32, m->flags);
    if (size == FLT_MSG_TRAIN_LDP_SIZE) {
        flt_le_put_f32(out + 36, m->ldp_clip);
        flt_le_put_f32(out + 40, m->ldp_noise);
    }
    *out_len = size;
    return FLT_OK;
}

flt_status_t flt_msg_train_decode(const uint8_t *buf, size_t len, flt_msg_train_t *m)
{
    uint32_t topk;
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    if (len < FLT_MSG_TRAIN_SIZE) {
        return FLT_ERR_TRUNCATED;
    }
    /* the flags say the size: LOCAL_DP appends its two fields */
    FLT_TRY(flt_fixed_len(len, train_size(flt_le_get32(buf + 32))));
    m->round = flt_le_get32(buf);
    m->epochs = buf[4];
    m->topk_kind = buf[5];
    m->batch_size = flt_le_get16(buf + 6);
    m->learning_rate = flt_le_get_f32(buf + 8);
    m->momentum = flt_le_get_f32(buf + 12);
    m->prox_mu = flt_le_get_f32(buf + 16);
    m->clip = flt_le_get_f32(buf + 20);
    topk = flt_le_get32(buf + 24);
    m->topk_count = m->topk_kind == (uint8_t)FLT_TOPK_COUNT ? topk : 0u;
    m->topk_fraction = m->topk_kind == (uint8_t)FLT_TOPK_FRACTION ? flt_f32_from_bits(topk) : 0.0f;
    m->seed = flt_le_get32(buf + 28);
    m->flags = flt_le_get32(buf + 32);
    m->ldp_clip = len == FLT_MSG_TRAIN_LDP_SIZE ? flt_le_get_f32(buf + 36) : 0.0f;
    m->ldp_noise = len == FLT_MSG_TRAIN_LDP_SIZE ? flt_le_get_f32(buf + 40) : 0.0f;
    return flt_train_check(m);
}

/* ---- ACK / NACK ----------------------------------------------------------------------- */

static flt_status_t flt_ack_check(uint8_t type, const flt_msg_ack_t *m)
{
    FLT_REQUIRE(type == (uint8_t)FLT_MSG_ACK || type == (uint8_t)FLT_MSG_NACK, FLT_ERR_ARG);
    FLT_REQUIRE(m->acked_seq >= 1u, FLT_ERR_RANGE);
    if (type == (uint8_t)FLT_MSG_ACK) {
        FLT_REQUIRE(m->code <= FLT_ACK_DUPLICATE, FLT_ERR_RANGE);
    } else {
        FLT_REQUIRE(m->code != 0u, FLT_ERR_RANGE);
    }
    return FLT_OK;
}

flt_status_t flt_msg_ack_encode(uint8_t type, const flt_msg_ack_t *m, uint8_t *out, size_t cap,
                                size_t *out_len)
{
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_ack_check(type, m));
    FLT_REQUIRE(cap >= FLT_MSG_ACK_SIZE, FLT_ERR_NOMEM);
    flt_le_put32(out, m->acked_seq);
    out[4] = m->code;
    *out_len = FLT_MSG_ACK_SIZE;
    return FLT_OK;
}

flt_status_t flt_msg_ack_decode(uint8_t type, const uint8_t *buf, size_t len, flt_msg_ack_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(type == (uint8_t)FLT_MSG_ACK || type == (uint8_t)FLT_MSG_NACK, FLT_ERR_ARG);
    FLT_TRY(flt_fixed_len(len, FLT_MSG_ACK_SIZE));
    m->acked_seq = flt_le_get32(buf);
    m->code = buf[4];
    return flt_ack_check(type, m);
}

/* ---- DISABLE ------------------------------------------------------------------------- */

flt_status_t flt_msg_disable_encode(const flt_msg_disable_t *m, uint8_t *out, size_t cap,
                                    size_t *out_len)
{
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(m->disabled <= 1u, FLT_ERR_RANGE);
    FLT_REQUIRE(cap >= FLT_MSG_DISABLE_SIZE, FLT_ERR_NOMEM);
    out[0] = m->disabled;
    out[1] = 0;
    out[2] = 0;
    out[3] = 0;
    *out_len = FLT_MSG_DISABLE_SIZE;
    return FLT_OK;
}

flt_status_t flt_msg_disable_decode(const uint8_t *buf, size_t len, flt_msg_disable_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_fixed_len(len, FLT_MSG_DISABLE_SIZE));
    m->disabled = buf[0];
    FLT_REQUIRE(m->disabled <= 1u, FLT_ERR_RANGE);
    FLT_REQUIRE(buf[1] == 0u && buf[2] == 0u && buf[3] == 0u, FLT_ERR_FORMAT);
    return FLT_OK;
}

/* ---- STATUS / LOG / ERROR ------------------------------------------------------------- */

static int flt_is_text_type(uint8_t type)
{
    return type == (uint8_t)FLT_MSG_STATUS || type == (uint8_t)FLT_MSG_LOG ||
           type == (uint8_t)FLT_MSG_ERROR;
}

static flt_status_t flt_text_check(const uint8_t *t, size_t n)
{
    size_t i;
    FLT_REQUIRE(n <= FLT_PROTO_MAX_TEXT, FLT_ERR_OVERSIZE);
    for (i = 0; i < n; ++i) {
        FLT_REQUIRE((t[i] >= 0x20u && t[i] <= 0x7Eu) || t[i] == 0x09u || t[i] == 0x0Au,
                    FLT_ERR_FORMAT);
    }
    return FLT_OK;
}

flt_status_t flt_msg_text_encode(uint8_t type, const flt_msg_text_t *m, uint8_t *out, size_t cap,
                                 size_t *out_len)
{
    size_t head;
    FLT_REQUIRE(m != NULL && out != NULL && out_len != NULL && flt_is_text_type(type), FLT_ERR_ARG);
    FLT_REQUIRE(m->text != NULL || m->text_len == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(type == (uint8_t)FLT_MSG_ERROR || m->code == 0u, FLT_ERR_ARG);
    FLT_TRY(flt_text_check((const uint8_t *)m->text, m->text_len));
    head = type == (uint8_t)FLT_MSG_ERROR ? 2u : 0u;
    FLT_REQUIRE(cap >= head && m->text_len <= cap - head, FLT_ERR_NOMEM);
    if (head != 0u) {
        flt_le_put16(out, m->code);
    }
    if (m->text_len != 0u) {
        flt_bytes_copy(out + head, m->text, m->text_len);
    }
    *out_len = head + m->text_len;
    return FLT_OK;
}

flt_status_t flt_msg_text_decode(uint8_t type, const uint8_t *buf, size_t len, flt_msg_text_t *m)
{
    size_t head;
    FLT_REQUIRE(buf != NULL && m != NULL && flt_is_text_type(type), FLT_ERR_ARG);
    head = type == (uint8_t)FLT_MSG_ERROR ? 2u : 0u;
    FLT_REQUIRE(len >= head, FLT_ERR_TRUNCATED);
    m->code = head != 0u ? flt_le_get16(buf) : 0u;
    m->text = (const char *)(buf + head);
    m->text_len = len - head;
    return flt_text_check(buf + head, len - head);
}

/* ---- SECAGG --------------------------------------------------------------------------- */

flt_status_t flt_msg_secagg_check(const uint8_t *buf, size_t len)
{
    FLT_REQUIRE(buf != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_MSG_SECAGG_MIN, FLT_ERR_TRUNCATED);
    FLT_REQUIRE(buf[0] >= FLT_SECAGG_KIND_BEGIN && buf[0] <= FLT_SECAGG_KIND_MAX,
                FLT_ERR_UNSUPPORTED);
    return FLT_OK;
}

/* ---- any ------------------------------------------------------------------------------ */

flt_status_t flt_msg_check(uint8_t type, const uint8_t *buf, size_t len)
{
    union {
        flt_msg_hello_t hello;
        flt_msg_global_t global;
        flt_msg_train_t train;
        flt_msg_delta_t delta;
        flt_msg_ack_t ack;
        flt_msg_text_t text;
        flt_msg_disable_t disable;
    } m;
    FLT_REQUIRE(buf != NULL || len == 0u, FLT_ERR_ARG);
    if (buf == NULL) {
        buf = (const uint8_t *)""; /* decoders need a pointer; len == 0 reads nothing */
    }
    switch (type) {
    case FLT_MSG_HELLO:
        return flt_msg_hello_decode(buf, len, &m.hello);
    case FLT_MSG_GLOBAL:
        return flt_msg_global_decode(buf, len, &m.global);
    case FLT_MSG_TRAIN:
        return flt_msg_train_decode(buf, len, &m.train);
    case FLT_MSG_DELTA:
        return flt_msg_delta_decode(buf, len, &m.delta);
    case FLT_MSG_ACK:
    case FLT_MSG_NACK:
        return flt_msg_ack_decode(type, buf, len, &m.ack);
    case FLT_MSG_STATUS:
    case FLT_MSG_LOG:
    case FLT_MSG_ERROR:
        return flt_msg_text_decode(type, buf, len, &m.text);
    case FLT_MSG_DISABLE:
        return flt_msg_disable_decode(buf, len, &m.disable);
    case FLT_MSG_SECAGG:
        return flt_msg_secagg_check(buf, len);
    default:
        return FLT_ERR_UNSUPPORTED;
    }
}
