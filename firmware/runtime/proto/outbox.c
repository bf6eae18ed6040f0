/* outbox.c - see outbox.h. */
#include "outbox.h"

flt_status_t flt_outbox_init(flt_outbox_t *ob, flt_proto_tx_t *tx, flt_outbox_slot_t *slots,
                             uint32_t n_slots, uint32_t retx_ms)
{
    FLT_REQUIRE(ob != NULL && tx != NULL && slots != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(n_slots >= 1u && retx_ms >= 1u, FLT_ERR_ARG);
    flt_bytes_zero(slots, (size_t)n_slots * sizeof slots[0]);
    ob->tx = tx;
    ob->slots = slots;
    ob->n_slots = n_slots;
    ob->retx_ms = retx_ms;
    ob->answer_ms = retx_ms;
    ob->counter = 0;
    return FLT_OK;
}

flt_status_t flt_outbox_slot(flt_outbox_t *ob, uint32_t slot, uint8_t *buf, size_t cap,
                             uint32_t retries)
{
    flt_outbox_slot_t *q;
    FLT_REQUIRE(ob != NULL && slot < ob->n_slots && (buf != NULL || cap == 0u), FLT_ERR_ARG);
    q = &ob->slots[slot];
    FLT_REQUIRE(!q->queued, FLT_ERR_STATE);
    q->buf = buf;
    q->cap = cap;
    q->retries = retries;
    return FLT_OK;
}

int32_t flt_outbox_head(const flt_outbox_t *ob)
{
    int32_t best = -1;
    uint32_t i;
    if (ob == NULL) {
        return -1;
    }
    /* order is a counter of queue calls; wrapping after 2^32 queues would only reorder two
     * messages queued 2^32 calls apart, which the one-message-per-kind users never hold */
    for (i = 0; i < ob->n_slots; ++i) {
        if (ob->slots[i].queued &&
            (best < 0 || ob->slots[i].order < ob->slots[(uint32_t)best].order)) {
            best = (int32_t)i;
        }
    }
    return best;
}

flt_status_t flt_outbox_queue(flt_outbox_t *ob, uint32_t slot, uint8_t type, size_t len)
{
    flt_outbox_slot_t *q;
    FLT_REQUIRE(ob != NULL && slot < ob->n_slots, FLT_ERR_ARG);
    q = &ob->slots[slot];
    FLT_REQUIRE(len <= q->cap && (q->buf != NULL || len == 0u), FLT_ERR_ARG);
    FLT_REQUIRE(type >= 1u && type <= FLT_MSG_TYPE_MAX && !flt_msg_is_control(type), FLT_ERR_ARG);
    q->queued = 1;
    q->type = type;
    q->len = len;
    q->order = ++ob->counter;
    q->index = 0;
    q->tries = 0;
    q->sent_at = 0;
    q->o.chunk_count = 0; /* sequence numbers are taken when it reaches the head */
    return FLT_OK;
}

flt_status_t flt_outbox_cancel(flt_outbox_t *ob, uint32_t slot)
{
    FLT_REQUIRE(ob != NULL && slot < ob->n_slots, FLT_ERR_ARG);
    ob->slots[slot].queued = 0;
    ob->slots[slot].o.chunk_count = 0;
    return FLT_OK;
}

static void flt_outbox_report(flt_outbox_event_t *ev, uint8_t kind, uint32_t slot,
                              const flt_outbox_slot_t *q)
{
    ev->event = kind;
    ev->slot = slot;
    ev->index = q->index;
    ev->chunk_count = q->o.chunk_count;
    ev->seq = q->o.chunk_count != 0u ? q->o.first_seq + q->index : 0u;
    ev->tries = q->tries;
}

flt_status_t flt_outbox_service(flt_outbox_t *ob, uint32_t now_ms, uint8_t *out, size_t cap,
                                flt_outbox_event_t *ev)
{
    int32_t head;
    uint32_t slot;
    flt_outbox_slot_t *q;
    flt_status_t s;
    int mode;
    size_t n = 0;
    FLT_REQUIRE(ob != NULL && out != NULL && ev != NULL, FLT_ERR_ARG);
    flt_bytes_zero(ev, sizeof *ev);
    head = flt_outbox_head(ob);
    if (head < 0) {
        return FLT_OK;
    }
    slot = (uint32_t)head;
    q = &ob->slots[slot];
    if (q->o.chunk_count == 0u) {
        s = flt_proto_tx_begin(ob->tx, q->type, q->len, &q->o);
        if (s != FLT_OK) {
            q->queued = 0;
            flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_FAILED, slot, q);
            return s;
        }
    }
    mode = flt_proto_ack_mode(q->type, q->o.chunk_count, ob->tx->flags);
    if (q->tries > 0u && (uint32_t)(now_ms - q->sent_at) <
                             (mode == FLT_PROTO_ACK_BY_ANSWER ? ob->answer_ms : ob->retx_ms)) {
        return FLT_OK;
    }
    if (q->tries > q->retries) {
        q->queued = 0; /* the peer will ask again (TRAIN) or the caller re-queues (HELLO) */
        flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_GAVE_UP, slot, q);
        return FLT_OK;
    }
    s = flt_proto_tx_chunk(ob->tx, &q->o, q->buf, q->index, out, cap, &n);
    if (s != FLT_OK) {
        q->queued = 0;
        flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_FAILED, slot, q);
        return s;
    }
    q->tries++;
    q->sent_at = now_ms;
    flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_FRAME, slot, q);
    ev->frame_len = n;
    if (mode == FLT_PROTO_ACK_BY_NEXT) { /* no ACK comes: the next chunk goes at once */
        q->index++;
        q->tries = 0;
        if (q->index == q->o.chunk_count) {
            q->queued = 0;
            ev->done = 1;
        }
    }
    return FLT_OK;
}

flt_status_t flt_outbox_on_control(flt_outbox_t *ob, const flt_proto_rx_event_t *rx_ev,
                                   flt_outbox_event_t *ev)
{
    int32_t head;
    uint32_t slot;
    flt_outbox_slot_t *q;
    FLT_REQUIRE(ob != NULL && rx_ev != NULL && ev != NULL, FLT_ERR_ARG);
    flt_bytes_zero(ev, sizeof *ev);
    head = flt_outbox_head(ob);
    if (head < 0 || rx_ev->event != (uint8_t)FLT_PROTO_EV_CONTROL) {
        return FLT_OK;
    }
    slot = (uint32_t)head;
    q = &ob->slots[slot];
    if (q->tries == 0u || q->o.chunk_count == 0u ||
        rx_ev->ack.acked_seq != q->o.first_seq + q->index) {
        return FLT_OK; /* stale: an ACK of an earlier chunk or retransmission, or replayed */
    }
    if (rx_ev->header.type == (uint8_t)FLT_MSG_NACK) {
        q->queued = 0;
        flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_NACKED, slot, q);
        ev->code = rx_ev->ack.code;
        return FLT_OK;
    }
    q->index++;
    q->tries = 0;
    if (q->index == q->o.chunk_count) {
        q->queued = 0;
        flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_DONE, slot, q);
        ev->index = (uint16_t)(q->index - 1u); /* the last chunk, the one just acknowledged */
        ev->seq = rx_ev->ack.acked_seq;
    }
    return FLT_OK;
}

flt_status_t flt_outbox_answered(flt_outbox_t *ob, uint32_t slot, flt_outbox_event_t *ev)
{
    flt_outbox_slot_t *q;
    FLT_REQUIRE(ob != NULL && ev != NULL && slot < ob->n_slots, FLT_ERR_ARG);
    flt_bytes_zero(ev, sizeof *ev);
    q = &ob->slots[slot];
    if (flt_outbox_head(ob) != (int32_t)slot || q->tries == 0u || q->o.chunk_count == 0u) {
        return FLT_OK;
    }
    q->queued = 0;
    flt_outbox_report(ev, (uint8_t)FLT_OUTBOX_EV_DONE, slot, q);
    return FLT_OK;
}

flt_status_t flt_outbox_set_answer_ms(flt_outbox_t *ob, uint32_t answer_ms)
{
    FLT_REQUIRE(ob != NULL && answer_ms >= 1u, FLT_ERR_ARG);
    ob->answer_ms = answer_ms;
    return FLT_OK;
}
