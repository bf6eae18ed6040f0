/* wire_count.c - see wire_count.h */
#include "wire_count.h"

#include "messages.h"

flt_status_t flt_wire_count(flt_proto_tx_t *tx, const flt_proto_tx_t *peer, uint8_t type,
                            const uint8_t *msg, size_t len, uint64_t *frame_bytes,
                            uint64_t *ack_bytes)
{
    uint8_t wire[FLT_PROTO_MAX_WIRE];
    flt_proto_outgoing_t o;
    flt_proto_rx_event_t ev = {0};
    uint64_t frames = 0;
    uint64_t replies = 0;
    size_t n = 0;
    uint16_t i;
    int acks;
    FLT_REQUIRE(tx != NULL && peer != NULL && frame_bytes != NULL && ack_bytes != NULL,
                FLT_ERR_ARG);
    FLT_REQUIRE(msg != NULL || len == 0, FLT_ERR_ARG);
    FLT_TRY(flt_proto_tx_begin(tx, type, len, &o));
    acks = flt_proto_ack_mode(type, o.chunk_count, tx->flags) == FLT_PROTO_ACK_EACH;
    ev.reply = FLT_MSG_ACK;
    ev.reply_code = FLT_ACK_ACCEPTED;
    for (i = 0; i < o.chunk_count; i++) {
        FLT_TRY(flt_proto_tx_chunk(tx, &o, msg, i, wire, sizeof wire, &n));
        frames += n;
        if (acks) {
            ev.reply_seq = o.first_seq + i;
            FLT_TRY(flt_proto_tx_reply(peer, &ev, wire, sizeof wire, &n));
            replies += n;
        }
    }
    *frame_bytes += frames;
    *ack_bytes += replies;
    return FLT_OK;
}
