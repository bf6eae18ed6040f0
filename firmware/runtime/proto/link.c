#include "link.h"

flt_status_t flt_proto_rx_init(flt_proto_rx_t *rx, const uint8_t *key, uint32_t device_id,
                               int on_host, uint8_t *frame, size_t frame_cap, uint8_t *msg,
                               size_t msg_cap)
{
    FLT_REQUIRE(rx != NULL && key != NULL && frame != NULL && msg != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(frame_cap >= FLT_PROTO_OVERHEAD, FLT_ERR_ARG);
    flt_bytes_zero(rx, sizeof *rx);
    rx->key = key;
    rx->device_id = device_id;
    rx->expect_flags = (uint8_t)(on_host ? 0u : FLT_PROTO_FLAG_FROM_HOST);
    rx->frame = frame;
    rx->frame_cap = frame_cap;
    rx->msg = msg;
    rx->msg_cap = msg_cap;
    return FLT_OK;
}

int flt_proto_ack_mode(uint8_t type, uint16_t chunk_count, uint8_t flags)
{
    if ((flags & FLT_PROTO_FLAG_FROM_HOST) == 0u) {
        return FLT_PROTO_ACK_EACH;
    }
    if (type == (uint8_t)FLT_MSG_TRAIN) {
        return FLT_PROTO_ACK_BY_ANSWER;
    }
    if (type == (uint8_t)FLT_MSG_GLOBAL && chunk_count <= FLT_PROTO_ANSWERED_CHUNKS) {
        return FLT_PROTO_ACK_BY_NEXT;
    }
    return FLT_PROTO_ACK_EACH;
}

static void flt_rx_put(flt_proto_rx_t *rx, uint8_t b)
{
    if (rx->frame_len < rx->frame_cap) {
        rx->frame[rx->frame_len++] = b;
    } else {
        rx->overflow = 1;
    }
}

static flt_status_t flt_rx_nack(flt_proto_rx_event_t *ev, flt_status_t why)
{
    ev->reply = (uint8_t)FLT_MSG_NACK;
    ev->reply_code = (uint8_t)why;
    ev->reply_seq = ev->header.seq;
    return why;
}

static flt_status_t flt_rx_data(flt_proto_rx_t *rx, const uint8_t *payload,
                                flt_proto_rx_event_t *ev)
{
    const flt_proto_header_t *h = &ev->header;
    flt_status_t s;
    if (h->seq <= rx->last_seq || h->seq == 0u) {
        if (h->seq == rx->last_seq && h->seq != 0u) {
            ev->reply = (uint8_t)FLT_MSG_ACK;
            ev->reply_code = FLT_ACK_DUPLICATE;
            ev->reply_seq = h->seq;
            return FLT_ERR_DUPLICATE;
        }
        if (h->seq == 0u) {
            return FLT_ERR_REPLAY; /* no reply: an ACK or NACK cannot name seq 0 (acked_seq >= 1) */
        }
        return flt_rx_nack(ev, FLT_ERR_REPLAY);
    }
    if (h->type == (uint8_t)FLT_MSG_TRAIN && (h->flags & FLT_PROTO_FLAG_FROM_HOST) != 0u &&
        h->seq != rx->last_seq + 1u) {
        /* a host frame before this TRAIN was lost (the GLOBAL it trains from, answered
         * messages): the host resends the GLOBAL and the TRAIN */
        rx->asm_active = 0;
        return flt_rx_nack(ev, FLT_ERR_ORDER);
    }
    if (h->chunk_index == 0u) {
        rx->asm_active = 1;
        rx->asm_type = h->type;
        rx->asm_count = h->chunk_count;
        rx->asm_next = 0;
        rx->msg_len = 0;
    } else if (!rx->asm_active || h->type != rx->asm_type || h->chunk_count != rx->asm_count ||
               h->chunk_index != rx->asm_next || h->seq != rx->last_seq + 1u) {
        rx->asm_active = 0;
        return flt_rx_nack(ev, FLT_ERR_ORDER);
    }
    if ((size_t)h->payload_len > rx->msg_cap - rx->msg_len) {
        rx->asm_active = 0;
        return flt_rx_nack(ev, FLT_ERR_NOMEM);
    }
    if (h->payload_len != 0u) {
        flt_bytes_copy(rx->msg + rx->msg_len, payload, h->payload_len);
    }
    rx->msg_len += h->payload_len;
    if ((uint32_t)h->chunk_index + 1u == (uint32_t)h->chunk_count) {
        rx->asm_active = 0;
        s = flt_msg_check(h->type, rx->msg, rx->msg_len);
        if (s != FLT_OK) {
            return flt_rx_nack(ev, s);
        }
        ev->event = (uint8_t)FLT_PROTO_EV_MESSAGE;
        ev->msg_len = rx->msg_len;
    } else {
        rx->asm_next++;
        ev->event = (uint8_t)FLT_PROTO_EV_CHUNK;
    }
    rx->last_seq = h->seq;
    if (flt_proto_ack_mode(h->type, h->chunk_count, h->flags) == FLT_PROTO_ACK_EACH) {
        ev->reply = (uint8_t)FLT_MSG_ACK;
        ev->reply_code = FLT_ACK_ACCEPTED;
        ev->reply_seq = h->seq;
    }
    return FLT_OK;
}

static flt_status_t flt_rx_frame(flt_proto_rx_t *rx, flt_proto_rx_event_t *ev)
{
    const uint8_t *payload = NULL;
    flt_proto_header_t *h = &ev->header;
    FLT_REQUIRE(!rx->overflow, FLT_ERR_OVERSIZE);
    FLT_REQUIRE(rx->cobs_remaining == 0u, FLT_ERR_FORMAT);
    FLT_TRY(flt_proto_frame_decode(rx->frame, rx->frame_len, rx->key, h, &payload));
    FLT_REQUIRE(h->device_id == rx->device_id && h->flags == rx->expect_flags, FLT_ERR_AUTH);
    if (flt_msg_is_control(h->type)) {
        FLT_REQUIRE(h->seq == 0u && h->chunk_count == 1u, FLT_ERR_FORMAT);
        FLT_TRY(flt_msg_ack_decode(h->type, payload, h->payload_len, &ev->ack));
        ev->event = (uint8_t)FLT_PROTO_EV_CONTROL;
        return FLT_OK;
    }
    return flt_rx_data(rx, payload, ev);
}

flt_status_t flt_proto_rx_resume_after(flt_proto_rx_t *rx, uint32_t last_seq)
{
    FLT_REQUIRE(rx != NULL, FLT_ERR_ARG);
    if (last_seq > rx->last_seq) {
        rx->last_seq = last_seq;
    }
    return FLT_OK;
}

flt_status_t flt_proto_rx_feed(flt_proto_rx_t *rx, uint8_t byte, flt_proto_rx_event_t *ev)
{
    flt_status_t s;
    FLT_REQUIRE(rx != NULL && ev != NULL, FLT_ERR_ARG);
    flt_bytes_zero(ev, sizeof *ev);
    if (byte != 0u) {
        rx->nonempty = 1;
        if (rx->cobs_remaining == 0u) { /* a code byte */
            if (rx->cobs_code != 0u && rx->cobs_code != 0xFFu) {
                flt_rx_put(rx, 0);
            }
            rx->cobs_code = byte;
            rx->cobs_remaining = (uint8_t)(byte - 1u);
        } else {
            flt_rx_put(rx, byte);
            rx->cobs_remaining--;
        }
        return FLT_OK;
    }
    if (!rx->nonempty) {
        return FLT_OK; /* empty frame (back-to-back delimiters): line idle */
    }
    s = flt_rx_frame(rx, ev);
    if (s != FLT_OK) {
        ev->event = (uint8_t)FLT_PROTO_EV_REJECTED;
    }
    rx->frame_len = 0;
    rx->cobs_remaining = 0;
    rx->cobs_code = 0;
    rx->overflow = 0;
    rx->nonempty = 0;
    return s;
}

flt_status_t flt_proto_rx_feed_bytes(flt_proto_rx_t *rx, const uint8_t *data, size_t len,
                                     size_t *used, flt_proto_rx_event_t *ev)
{
    size_t i;
    flt_status_t s = FLT_OK;
    FLT_REQUIRE(rx != NULL && ev != NULL && used != NULL && (data != NULL || len == 0u),
                FLT_ERR_ARG);
    flt_bytes_zero(ev, sizeof *ev);
    for (i = 0; i < len; ++i) {
        s = flt_proto_rx_feed(rx, data[i], ev);
        if (ev->event != (uint8_t)FLT_PROTO_EV_NONE) {
            *used = i + 1u;
            return s;
        }
    }
    *used = len;
    return s;
}

flt_status_t flt_proto_tx_init(flt_proto_tx_t *tx, const uint8_t *key, uint32_t device_id,
                               int on_host, uint32_t first_seq)
{
    FLT_REQUIRE(tx != NULL && key != NULL && first_seq >= 1u, FLT_ERR_ARG);
    tx->key = key;
    tx->device_id = device_id;
    tx->flags = (uint8_t)(on_host ? FLT_PROTO_FLAG_FROM_HOST : 0u);
    tx->chunk = (uint16_t)FLT_PROTO_MAX_CHUNK;
    tx->next_seq = first_seq;
    return FLT_OK;
}

flt_status_t flt_proto_tx_set_chunk(flt_proto_tx_t *tx, uint16_t chunk)
{
    FLT_REQUIRE(tx != NULL && chunk >= 1u && chunk <= FLT_PROTO_MAX_CHUNK, FLT_ERR_ARG);
    tx->chunk = chunk;
    return FLT_OK;
}

flt_status_t flt_proto_tx_skip_to(flt_proto_tx_t *tx, uint32_t next_seq)
{
    FLT_REQUIRE(tx != NULL && next_seq != 0u, FLT_ERR_ARG);
    if (next_seq > tx->next_seq) {
        tx->next_seq = next_seq;
    }
    return FLT_OK;
}

flt_status_t flt_proto_tx_begin(flt_proto_tx_t *tx, uint8_t type, size_t msg_len,
                                flt_proto_outgoing_t *o)
{
    size_t count;
    FLT_REQUIRE(tx != NULL && o != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(type >= 1u && type <= FLT_MSG_TYPE_MAX && !flt_msg_is_control(type), FLT_ERR_ARG);
    FLT_REQUIRE(tx->chunk >= 1u && tx->chunk <= FLT_PROTO_MAX_CHUNK, FLT_ERR_ARG);
    count = msg_len / tx->chunk + (msg_len % tx->chunk != 0u ? 1u : 0u);
    if (count == 0u) {
        count = 1u;
    }
    FLT_REQUIRE(count <= 0xFFFFu, FLT_ERR_ARG);
    FLT_REQUIRE(tx->next_seq >= 1u && (uint32_t)count <= 0xFFFFFFFFu - tx->next_seq + 1u,
                FLT_ERR_STATE);
    o->type = type;
    o->len = msg_len;
    o->first_seq = tx->next_seq;
    o->chunk_count = (uint16_t)count;
    o->chunk = tx->chunk;
    tx->next_seq += (uint32_t)count; /* wraps to 0 only after the last usable seq: then STATE */
    return FLT_OK;
}

flt_status_t flt_proto_tx_chunk(const flt_proto_tx_t *tx, const flt_proto_outgoing_t *o,
                                const uint8_t *msg, uint16_t index, uint8_t *out, size_t cap,
                                size_t *out_len)
{
    flt_proto_header_t h;
    size_t off;
    FLT_REQUIRE(tx != NULL && o != NULL && (msg != NULL || o->len == 0u), FLT_ERR_ARG);
    FLT_REQUIRE(index < o->chunk_count, FLT_ERR_ARG);
    FLT_REQUIRE(o->chunk >= 1u && o->chunk <= FLT_PROTO_MAX_CHUNK, FLT_ERR_ARG);
    off = (size_t)index * o->chunk;
    FLT_REQUIRE(off <= o->len, FLT_ERR_ARG);
    h.version = FLT_PROTO_VERSION;
    h.type = o->type;
    h.flags = tx->flags;
    h.device_id = tx->device_id;
    h.seq = o->first_seq + index;
    h.chunk_index = index;
    h.chunk_count = o->chunk_count;
    h.payload_len = (uint16_t)(o->len - off < o->chunk ? o->len - off : o->chunk);
    return flt_proto_frame_encode(&h, msg == NULL ? NULL : msg + off, tx->key, out, cap, out_len);
}

flt_status_t flt_proto_tx_reply(const flt_proto_tx_t *tx, const flt_proto_rx_event_t *ev,
                                uint8_t *out, size_t cap, size_t *out_len)
{
    flt_proto_header_t h;
    flt_msg_ack_t ack;
    uint8_t payload[FLT_MSG_ACK_SIZE];
    size_t n = 0;
    FLT_REQUIRE(tx != NULL && ev != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(flt_msg_is_control(ev->reply), FLT_ERR_ARG);
    ack.acked_seq = ev->reply_seq;
    ack.code = ev->reply_code;
    FLT_TRY(flt_msg_ack_encode(ev->reply, &ack, payload, sizeof payload, &n));
    h.version = FLT_PROTO_VERSION;
    h.type = ev->reply;
    h.flags = tx->flags;
    h.device_id = tx->device_id;
    h.seq = 0;
    h.chunk_index = 0;
    h.chunk_count = 1;
    h.payload_len = (uint16_t)n;
    return flt_proto_frame_encode(&h, payload, tx->key, out, cap, out_len);
}
