/* link_rx.c - libFuzzer harness of the stream receiver and its reassembly
 * (flt_proto_rx_feed / flt_proto_rx_feed_bytes, firmware/runtime/proto/link.c).
 *
 * Feeds: a receiver (device side or host side, frame and message buffers of exactly their
 * capacity on the heap) with a byte stream the input describes. Bytes 0..1: the receiver's
 * side (bit 0), its message capacity (bits 1-2: 48, 300, 1200 or 4096 bytes), a small frame
 * buffer (bit 3), the sender's first sequence number (byte 1). Then operations, until the input
 * ends (op byte modulo 4):
 *   0 FRAME    one frame built with flt_proto_frame_encode and FUZZ_KEY: type 1..9, then
 *              a control byte (bit 0 another device id, bit 1 the wrong direction, bit 2
 *              chunked, bits 3-4 the sequence number: the sender's next, its last, 32 bits
 *              from the input, or its next minus a byte), chunk index and count bytes, a
 *              16-bit payload length (at most FLT_PROTO_MAX_CHUNK) and the payload bytes, and
 *              a corruption byte: nonzero xors it into the wire byte at a 16-bit position
 *              (never the delimiter);
 *   1 MESSAGE  a whole message sent like the real sender does (flt_proto_tx_begin / _chunk):
 *              data type, 16-bit length, chunk size 1..256, the bytes, then the index of a
 *              chunk to drop and of one to send twice;
 *   2 RAW      a length byte and that many bytes, fed as they are (noise, partial frames,
 *              stray delimiters, frames copied from the seeds);
 *   3 SEQ      the sender's next sequence number := 32 bits from the input (wrap-around).
 * Asserts, beyond memory safety, for every frame that ends (a 0x00 after other bytes):
 * - the outcome is the one link.h's contract gives for those bytes, computed independently
 *   from the one-shot decoders (flt_cobs_decode, flt_proto_frame_decode, flt_msg_ack_decode,
 *   flt_msg_check) and a model of the sequence / reassembly rules: the status, the event, the
 *   header of authenticated frames, what to reply (ACK, ACK duplicate, NACK with the status,
 *   or nothing for a frame that is not authenticated or that an answer confirms: an accepted
 *   host TRAIN or a chunk of a host GLOBAL of at most 4 chunks), and for MESSAGE the exact
 *   bytes (the chunks' payloads in order);
 * - a receiver fed byte by byte (flt_proto_rx_feed) and one fed whole reads
 *   (flt_proto_rx_feed_bytes) report identical events;
 * - every reply the receiver asks for can be built (flt_proto_tx_reply) and decodes at the
 *   peer as the CONTROL event it describes;
 * - bytes that are not a frame end never produce an event; buffer lengths stay within caps.
 */
#include "fuzz.h"
#include "proto/link.h"

#define PENDING_CAP 65536u

static const uint8_t key[FLT_PROTO_KEY_SIZE] = FUZZ_KEY;

typedef struct {
    flt_status_t status;
    flt_proto_rx_event_t ev;
} outcome_t;

typedef struct {
    int on_host;
    size_t frame_cap, msg_cap;
    flt_proto_rx_t rx1, rxb; /* fed byte by byte, fed whole reads */
    uint8_t *frame1, *msg1, *frameb, *msgb;
    flt_proto_tx_t tx;       /* the sender the FRAME and MESSAGE operations speak for */
    flt_proto_tx_t reply_tx; /* the receiver's side: its replies */
    flt_proto_rx_t peer;     /* the sender's side: decodes the replies */
    uint8_t *peer_frame, *peer_msg;
    /* the frame being received, as sent: pending[0..pending_len-1] */
    size_t pending_len;
    int pending_overflow;
    /* model of the receiver's sequence and reassembly state */
    uint32_t last_seq;
    int asm_active;
    uint8_t asm_type;
    uint16_t asm_next, asm_count;
    uint8_t *shadow;
    size_t shadow_len;
} harness_t;

static harness_t h;
static uint8_t pending[PENDING_CAP]; /* apart from h: not wiped for every input */
static uint8_t decoded[PENDING_CAP];
static outcome_t seen[FLT_PROTO_MAX_WIRE + 1u]; /* the events of one feed() */

static void events_equal(const outcome_t *a, const outcome_t *b)
{
    FUZZ_ASSERT(a->status == b->status && a->ev.event == b->ev.event);
    FUZZ_ASSERT(a->ev.reply == b->ev.reply && a->ev.reply_code == b->ev.reply_code &&
                a->ev.reply_seq == b->ev.reply_seq && a->ev.msg_len == b->ev.msg_len);
    const flt_proto_header_t *x = &a->ev.header, *y = &b->ev.header;
    FUZZ_ASSERT(x->version == y->version && x->type == y->type && x->flags == y->flags &&
                x->device_id == y->device_id && x->seq == y->seq &&
                x->chunk_index == y->chunk_index && x->chunk_count == y->chunk_count &&
                x->payload_len == y->payload_len);
    FUZZ_ASSERT(a->ev.ack.acked_seq == b->ev.ack.acked_seq && a->ev.ack.code == b->ev.ack.code);
}

static void reply_nack(outcome_t *o, flt_status_t why)
{
    o->status = why;
    o->ev.event = FLT_PROTO_EV_REJECTED;
    o->ev.reply = FLT_MSG_NACK;
    o->ev.reply_code = (uint8_t)why;
    o->ev.reply_seq = o->ev.header.seq;
}

/* The outcome link.h promises for a data frame with header hd and payload p. */
static void model_data(outcome_t *o, const flt_proto_header_t *hd, const uint8_t *p)
{
    if (hd->seq <= h.last_seq || hd->seq == 0u) {
        if (hd->seq == h.last_seq && hd->seq != 0u) {
            o->status = FLT_ERR_DUPLICATE;
            o->ev.event = FLT_PROTO_EV_REJECTED;
            o->ev.reply = FLT_MSG_ACK;
            o->ev.reply_code = FLT_ACK_DUPLICATE;
            o->ev.reply_seq = hd->seq;
            return;
        }
        if (hd->seq == 0u) {
            o->status = FLT_ERR_REPLAY; /* no reply: an ACK/NACK cannot name seq 0 */
            o->ev.event = FLT_PROTO_EV_REJECTED;
            return;
        }
        reply_nack(o, FLT_ERR_REPLAY);
        return;
    }
    if (hd->type == FLT_MSG_TRAIN && (hd->flags & FLT_PROTO_FLAG_FROM_HOST) != 0u &&
        hd->seq != h.last_seq + 1u) { /* a host frame before the TRAIN was lost */
        h.asm_active = 0;
        reply_nack(o, FLT_ERR_ORDER);
        return;
    }
    if (hd->chunk_index == 0u) {
        h.asm_active = 1;
        h.asm_type = hd->type;
        h.asm_count = hd->chunk_count;
        h.asm_next = 0;
        h.shadow_len = 0;
    } else if (!h.asm_active || hd->type != h.asm_type || hd->chunk_count != h.asm_count ||
               hd->chunk_index != h.asm_next || hd->seq != h.last_seq + 1u) {
        h.asm_active = 0;
        reply_nack(o, FLT_ERR_ORDER);
        return;
    }
    if (hd->payload_len > h.msg_cap - h.shadow_len) {
        h.asm_active = 0;
        reply_nack(o, FLT_ERR_NOMEM);
        return;
    }
    if (hd->payload_len > 0u) {
        memcpy(h.shadow + h.shadow_len, p, hd->payload_len);
    }
    h.shadow_len += hd->payload_len;
    if (hd->chunk_index + 1u == hd->chunk_count) {
        h.asm_active = 0;
        flt_status_t s = flt_msg_check(hd->type, h.shadow, h.shadow_len);
        if (s != FLT_OK) {
            reply_nack(o, s);
            return;
        }
        o->ev.event = FLT_PROTO_EV_MESSAGE;
        o->ev.msg_len = h.shadow_len;
    } else {
        h.asm_next++;
        o->ev.event = FLT_PROTO_EV_CHUNK;
    }
    h.last_seq = hd->seq;
    o->status = FLT_OK;
    /* answered messages (link.h): a host TRAIN, a host GLOBAL of at most 4 chunks */
    if ((hd->flags & FLT_PROTO_FLAG_FROM_HOST) != 0u &&
        (hd->type == FLT_MSG_TRAIN || (hd->type == FLT_MSG_GLOBAL && hd->chunk_count <= 4u))) {
        return;
    }
    o->ev.reply = FLT_MSG_ACK;
    o->ev.reply_code = FLT_ACK_ACCEPTED;
    o->ev.reply_seq = hd->seq;
}

/* The outcome link.h promises for the frame in pending (COBS bytes, delimiter removed). */
static void model_frame(outcome_t *o, int *cobs_failed)
{
    memset(o, 0, sizeof *o);
    o->ev.event = FLT_PROTO_EV_REJECTED;
    *cobs_failed = 0;
    uint8_t *dec = decoded;
    size_t n = 0;
    flt_status_t s = flt_cobs_decode(pending, h.pending_len, dec, h.pending_len, &n);
    if (s != FLT_OK) {
        FUZZ_ASSERT(s == FLT_ERR_FORMAT);
        *cobs_failed = 1; /* the receiver says FORMAT, or OVERSIZE when it also overflowed */
        return;
    }
    if (n > h.frame_cap) {
        o->status = FLT_ERR_OVERSIZE;
        return;
    }
    const uint8_t *payload = NULL;
    flt_proto_header_t hd;
    s = flt_proto_frame_decode(dec, n, key, &hd, &payload);
    if (s != FLT_OK) {
        o->status = s;
        return;
    }
    o->ev.header = hd;
    uint8_t want_flags = h.on_host ? 0u : FLT_PROTO_FLAG_FROM_HOST;
    if (hd.device_id != FUZZ_DEVICE_ID || hd.flags != want_flags) {
        o->status = FLT_ERR_AUTH;
    } else if (flt_msg_is_control(hd.type)) {
        if (hd.seq != 0u || hd.chunk_count != 1u) {
            o->status = FLT_ERR_FORMAT;
        } else {
            o->status = flt_msg_ack_decode(hd.type, payload, hd.payload_len, &o->ev.ack);
            if (o->status == FLT_OK) {
                o->ev.event = FLT_PROTO_EV_CONTROL;
            }
        }
    } else {
        model_data(o, &hd, payload);
    }
}

/* The reply the receiver asks for must be buildable and reach the peer as described. */
static void check_reply(const flt_proto_rx_event_t *ev)
{
    if (ev->reply == 0u) {
        return;
    }
    uint8_t wire[FLT_PROTO_MAX_WIRE];
    size_t n = 0, used = 0;
    FUZZ_ASSERT(flt_proto_tx_reply(&h.reply_tx, ev, wire, sizeof wire, &n) == FLT_OK);
    flt_proto_rx_event_t pev;
    FUZZ_ASSERT(flt_proto_rx_feed_bytes(&h.peer, wire, n, &used, &pev) == FLT_OK);
    FUZZ_ASSERT(used == n && pev.event == FLT_PROTO_EV_CONTROL && pev.header.type == ev->reply);
    FUZZ_ASSERT(pev.ack.acked_seq == ev->reply_seq && pev.ack.code == ev->reply_code);
}

static void feed(const uint8_t *bytes, size_t n)
{
    size_t n_seen = 0;
    FUZZ_ASSERT(n <= FLT_PROTO_MAX_WIRE); /* one frame, or a RAW operation's <= 255 bytes */
    for (size_t i = 0; i < n; ++i) {
        outcome_t got;
        got.status = flt_proto_rx_feed(&h.rx1, bytes[i], &got.ev);
        FUZZ_ASSERT(h.rx1.frame_len <= h.frame_cap && h.rx1.msg_len <= h.msg_cap);
        if (bytes[i] != 0u || h.pending_len == 0u) {
            FUZZ_ASSERT(got.status == FLT_OK && got.ev.event == FLT_PROTO_EV_NONE);
            if (bytes[i] != 0u) {
                if (h.pending_len < PENDING_CAP) {
                    pending[h.pending_len++] = bytes[i];
                } else {
                    h.pending_overflow = 1;
                }
            }
            continue;
        }
        FUZZ_ASSERT(got.ev.event != FLT_PROTO_EV_NONE);
        if (!h.pending_overflow) {
            outcome_t want;
            int cobs_failed = 0;
            model_frame(&want, &cobs_failed);
            if (cobs_failed) {
                FUZZ_ASSERT(got.ev.event == FLT_PROTO_EV_REJECTED && got.ev.reply == 0u &&
                            (got.status == FLT_ERR_FORMAT || got.status == FLT_ERR_OVERSIZE));
            } else {
                events_equal(&got, &want);
                if (got.ev.event == FLT_PROTO_EV_MESSAGE) {
                    FUZZ_ASSERT(got.ev.msg_len == h.shadow_len &&
                                memcmp(h.msg1, h.shadow, h.shadow_len) == 0);
                }
            }
        } else {
            FUZZ_ASSERT(got.ev.event == FLT_PROTO_EV_REJECTED && got.status == FLT_ERR_OVERSIZE);
        }
        check_reply(&got.ev);
        seen[n_seen++] = got;
        h.pending_len = 0;
        h.pending_overflow = 0;
    }
    /* the same bytes as whole reads: the same events, in the same order */
    size_t pos = 0, k = 0;
    while (pos < n) {
        outcome_t got;
        size_t used = 0;
        got.status = flt_proto_rx_feed_bytes(&h.rxb, bytes + pos, n - pos, &used, &got.ev);
        FUZZ_ASSERT(used >= 1u && used <= n - pos);
        pos += used;
        if (got.ev.event == FLT_PROTO_EV_NONE) {
            FUZZ_ASSERT(pos == n && got.status == FLT_OK);
            break;
        }
        FUZZ_ASSERT(k < n_seen && bytes[pos - 1u] == 0u);
        events_equal(&got, &seen[k]);
        if (got.ev.event == FLT_PROTO_EV_MESSAGE) {
            FUZZ_ASSERT(memcmp(h.msgb, h.msg1, got.ev.msg_len) == 0);
        }
        k++;
    }
    FUZZ_ASSERT(k == n_seen);
}

static uint32_t pick_seq(fuzz_in_t *in, uint8_t mode)
{
    uint32_t next = h.tx.next_seq;
    switch (mode & 3u) {
    case 0:
        h.tx.next_seq = next + 1u == 0u ? 1u : next + 1u;
        return next;
    case 1:
        return next - 1u;
    case 2:
        return fuzz_u32(in);
    default:
        return next - fuzz_u8(in);
    }
}

static void op_frame(fuzz_in_t *in)
{
    flt_proto_header_t hd;
    hd.version = FLT_PROTO_VERSION;
    hd.type = (uint8_t)(1u + fuzz_u8(in) % FLT_MSG_TYPE_MAX);
    uint8_t ctl = fuzz_u8(in);
    hd.device_id = FUZZ_DEVICE_ID ^ (uint32_t)(ctl & 1u);
    hd.flags = (uint8_t)(h.tx.flags ^ ((ctl >> 1) & 1u));
    hd.seq = pick_seq(in, (uint8_t)(ctl >> 3));
    uint8_t index = fuzz_u8(in), count = fuzz_u8(in);
    hd.chunk_count = (ctl & 4u) ? (uint16_t)(count < 2u ? 2u : count) : 1u;
    hd.chunk_index = (uint16_t)(index % hd.chunk_count);
    size_t want = fuzz_u16(in) % (FLT_PROTO_MAX_CHUNK + 1u), got = 0;
    const uint8_t *p = fuzz_take(in, want, &got);
    hd.payload_len = (uint16_t)got;
    uint8_t corrupt = fuzz_u8(in);
    uint16_t at = fuzz_u16(in);
    uint8_t wire[FLT_PROTO_MAX_WIRE];
    size_t n = 0;
    FUZZ_ASSERT(flt_proto_frame_encode(&hd, p, key, wire, sizeof wire, &n) == FLT_OK);
    if (corrupt != 0u) {
        wire[at % (n - 1u)] ^= corrupt;
    }
    feed(wire, n);
}

static void op_message(fuzz_in_t *in)
{
    static const uint8_t types[] = {FLT_MSG_HELLO,  FLT_MSG_GLOBAL, FLT_MSG_TRAIN, FLT_MSG_DELTA,
                                    FLT_MSG_STATUS, FLT_MSG_LOG,    FLT_MSG_ERROR};
    uint8_t type = types[fuzz_u8(in) % sizeof types];
    size_t want = fuzz_u16(in), len = 0;
    uint16_t chunk = (uint16_t)(1u + fuzz_u8(in));
    const uint8_t *msg = fuzz_take(in, want, &len);
    uint16_t drop = fuzz_u16(in), twice = fuzz_u16(in);
    flt_proto_outgoing_t o;
    if (flt_proto_tx_set_chunk(&h.tx, chunk) != FLT_OK ||
        flt_proto_tx_begin(&h.tx, type, len, &o) != FLT_OK) {
        return; /* sequence numbers exhausted (after a SEQ operation) */
    }
    for (uint16_t i = 0; i < o.chunk_count; ++i) {
        uint8_t wire[FLT_PROTO_MAX_WIRE];
        size_t n = 0;
        if (i == drop) {
            continue;
        }
        FUZZ_ASSERT(flt_proto_tx_chunk(&h.tx, &o, msg, i, wire, sizeof wire, &n) == FLT_OK);
        feed(wire, n);
        if (i == twice) {
            feed(wire, n);
        }
    }
}

/* A heap block of exactly n bytes for buffer `slot` in size option `opt` ((slot, opt) always
 * means the same n), allocated once and reused by later inputs: ASan still sees any access
 * past n, and no input pays for fresh pages. */
static uint8_t *block(uint32_t slot, uint32_t opt, size_t n)
{
    static uint8_t *blocks[7][4];
    if (blocks[slot][opt] == NULL) {
        blocks[slot][opt] = (uint8_t *)malloc(n);
        FUZZ_ASSERT(blocks[slot][opt] != NULL);
    }
    return blocks[slot][opt];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t msg_caps[4] = {48u, 300u, 1200u, 4096u};
    fuzz_in_t in = fuzz_in(data, size);
    uint8_t cfg = fuzz_u8(&in);
    uint8_t first = fuzz_u8(&in);
    memset(&h, 0, sizeof h);
    h.on_host = cfg & 1u;
    uint32_t mopt = (cfg >> 1) & 3u, fopt = (cfg >> 3) & 1u;
    h.msg_cap = msg_caps[mopt];
    h.frame_cap = fopt ? FLT_PROTO_OVERHEAD + 40u : FLT_PROTO_MAX_FRAME;
    h.frame1 = block(0, fopt, h.frame_cap);
    h.frameb = block(1, fopt, h.frame_cap);
    h.msg1 = block(2, mopt, h.msg_cap);
    h.msgb = block(3, mopt, h.msg_cap);
    h.shadow = block(4, mopt, h.msg_cap);
    h.peer_frame = block(5, 0, FLT_PROTO_MAX_FRAME);
    h.peer_msg = block(6, 0, 16);
    FUZZ_ASSERT(flt_proto_rx_init(&h.rx1, key, FUZZ_DEVICE_ID, h.on_host, h.frame1, h.frame_cap,
                                  h.msg1, h.msg_cap) == FLT_OK);
    FUZZ_ASSERT(flt_proto_rx_init(&h.rxb, key, FUZZ_DEVICE_ID, h.on_host, h.frameb, h.frame_cap,
                                  h.msgb, h.msg_cap) == FLT_OK);
    FUZZ_ASSERT(flt_proto_rx_init(&h.peer, key, FUZZ_DEVICE_ID, !h.on_host, h.peer_frame,
                                  FLT_PROTO_MAX_FRAME, h.peer_msg, 16) == FLT_OK);
    FUZZ_ASSERT(flt_proto_tx_init(&h.tx, key, FUZZ_DEVICE_ID, !h.on_host, 1u + first) == FLT_OK);
    FUZZ_ASSERT(flt_proto_tx_init(&h.reply_tx, key, FUZZ_DEVICE_ID, h.on_host, 1u) == FLT_OK);
    while (fuzz_left(&in) > 0u) {
        switch (fuzz_u8(&in) % 4u) {
        case 0:
            op_frame(&in);
            break;
        case 1:
            op_message(&in);
            break;
        case 2: {
            size_t n = 0;
            const uint8_t *p = fuzz_take(&in, fuzz_u8(&in), &n);
            if (n > 0u) {
                feed(p, n);
            }
            break;
        }
        default: {
            uint32_t s = fuzz_u32(&in);
            h.tx.next_seq = s == 0u ? 1u : s;
            break;
        }
        }
    }
    return 0;
}
