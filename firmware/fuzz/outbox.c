/* outbox.c - libFuzzer harness of the outbox (firmware/runtime/proto/outbox.c), the sender's
 * state machine, driven by what comes back over a lossy link.
 *
 * Feeds: an outbox (1..4 slots, heap message buffers of exactly their capacity) on one side of
 * an in-memory link, a receiver on the other that answers every frame with flt_proto_tx_reply;
 * the input decides everything the link and the clock do. Bytes 0..3: the sender's side (bit 0),
 * the number of slots, the retry budget (0..3) and the chunk size (1..256); bytes 4..7 the
 * clock's start (so it wraps); then operations (op byte modulo 7):
 *   0 QUEUE    slot, message type, 16-bit length, a fill byte: the message is the input's next
 *              bytes padded with the fill byte (a copy is kept as what was queued);
 *   1 SERVICE  the clock advances by a byte times 8 ms; flt_outbox_service; a produced frame is
 *              delivered, dropped, delivered twice or delivered with a byte corrupted (a byte
 *              picks which);
 *   2 ANSWERS  the receiver's pending replies (up to 4, the newest kept) are delivered, dropped,
 *              or delivered late (swapped with the next one), a byte picks per reply;
 *   3 FORGED   raw bytes fed to the sender's receiver as if they were an answer;
 *   4 STALE    the last delivered reply is delivered again (a retransmitted ACK);
 *   5 TIME     the clock jumps by 32 bits from the input;
 *   6 CANCEL   slot: flt_outbox_cancel, sent in part, in full but not yet acknowledged, or
 *              not queued at all (the device drops a DELTA it will not send, flt_device.c);
 *   7 ANSWERED slot: flt_outbox_answered, called as the host calls it (the receiver
 *              delivered the head's message: its answer arrived), or on another slot.
 *   On the host side a GLOBAL of at most 4 chunks is a burst (no ACK; the FRAME of its last
 *   chunk completes the slot) and a TRAIN waits for its answer (link.h "answered messages").
 * Asserts, beyond memory safety:
 * - FRAME: tries is 1..retries+1 and a retransmission is byte-identical to the chunk's first
 *   transmission; ev->done only for the last chunk of a host GLOBAL of at most 4 chunks (sent
 *   once: tries 1), and it leaves the slot unqueued; ANSWERED of a slot that is not the head,
 *   or not sent yet, changes nothing (NONE); DONE / NACKED / GAVE_UP / FAILED leave the slot
 *   unqueued; GAVE_UP only after
 *   retries + 1 transmissions of the chunk; NACKED carries a nonzero code;
 * - DONE: the receiver delivered that exact message (type and bytes) as its latest MESSAGE;
 * - the receiver delivers only messages that were queued (type and bytes of some queued copy),
 *   never the same sequence number twice;
 * - flt_outbox_head names a queued slot, or -1 when none is;
 * - CANCEL succeeds and leaves the slot unqueued (a slot index out of range: FLT_ERR_ARG); a
 *   late answer to the cancelled message never completes the slot, even once it holds a new
 *   message (the DONE check: the receiver's latest delivery is that new message).
 */
#include "fuzz.h"
#include "proto/outbox.h"

#define MAX_SLOTS 4u
#define SLOT_CAP 1100u
#define MAX_QUEUED 16u
#define MAX_REPLIES 4u

static const uint8_t key[FLT_PROTO_KEY_SIZE] = FUZZ_KEY;

typedef struct {
    uint8_t type;
    size_t len;
    uint8_t bytes[SLOT_CAP];
} copy_t;

typedef struct {
    uint8_t bytes[FLT_PROTO_MAX_WIRE];
    size_t len;
} wire_t;

typedef struct {
    uint32_t n_slots, retries, now;
    int on_host;
    flt_proto_tx_t tx;
    flt_outbox_t ob;
    flt_outbox_slot_t slots[MAX_SLOTS];
    uint8_t *bufs[MAX_SLOTS];
    copy_t in_slot[MAX_SLOTS]; /* what each slot holds */
    wire_t first[MAX_SLOTS];   /* first transmission of the chunk in flight */
    uint32_t first_seq[MAX_SLOTS];
    flt_proto_rx_t back_rx; /* the sender's receiver: answers */
    uint8_t *back_frame, *back_msg;
    /* the far side */
    flt_proto_rx_t rx;
    flt_proto_tx_t rx_tx;
    uint8_t *rx_frame, *rx_msg;
    copy_t delivered; /* the latest MESSAGE */
    int have_delivered;
    uint32_t delivered_seq;
    wire_t replies[MAX_REPLIES];
    uint32_t n_replies;
    wire_t last_reply;
    copy_t queued[MAX_QUEUED]; /* every message queued (the latest MAX_QUEUED) */
    uint32_t n_queued;
} harness_t;

static harness_t h;

static int was_queued(uint8_t type, const uint8_t *bytes, size_t len)
{
    uint32_t n = h.n_queued < MAX_QUEUED ? h.n_queued : MAX_QUEUED;
    for (uint32_t i = 0; i < n; ++i) {
        const copy_t *c = &h.queued[i];
        if (c->type == type && c->len == len && (len == 0u || memcmp(c->bytes, bytes, len) == 0)) {
            return 1;
        }
    }
    return h.n_queued > MAX_QUEUED; /* older copies were overwritten: cannot tell */
}

static void slot_done(const flt_outbox_event_t *ev)
{
    FUZZ_ASSERT(ev->slot < h.n_slots && !h.slots[ev->slot].queued);
}

/* An event of the outbox (from service or on_control): the checks that do not need a frame. */
static void check_event(const flt_outbox_event_t *ev)
{
    switch (ev->event) {
    case FLT_OUTBOX_EV_DONE: {
        slot_done(ev);
        const copy_t *c = &h.in_slot[ev->slot];
        FUZZ_ASSERT(h.have_delivered && h.delivered.type == c->type && h.delivered.len == c->len);
        FUZZ_ASSERT(c->len == 0u || memcmp(h.delivered.bytes, c->bytes, c->len) == 0);
        FUZZ_ASSERT(ev->seq == h.delivered_seq);
        break;
    }
    case FLT_OUTBOX_EV_NACKED:
        slot_done(ev);
        FUZZ_ASSERT(ev->code != 0u);
        break;
    case FLT_OUTBOX_EV_GAVE_UP:
        slot_done(ev);
        FUZZ_ASSERT(ev->tries == h.retries + 1u);
        break;
    case FLT_OUTBOX_EV_FAILED:
        slot_done(ev);
        break;
    default: /* FRAME is checked by op_service */
        FUZZ_ASSERT(ev->event == FLT_OUTBOX_EV_NONE || ev->event == FLT_OUTBOX_EV_FRAME);
        break;
    }
    int32_t head = flt_outbox_head(&h.ob);
    int any = 0;
    for (uint32_t i = 0; i < h.n_slots; ++i) {
        any |= h.slots[i].queued;
    }
    FUZZ_ASSERT(any ? (head >= 0 && (uint32_t)head < h.n_slots && h.slots[head].queued)
                    : head == -1);
}

/* Bytes arriving at the sender: answers (or forgeries) for its outbox. */
static void to_sender(const uint8_t *bytes, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        flt_proto_rx_event_t rev;
        size_t used = 0;
        (void)flt_proto_rx_feed_bytes(&h.back_rx, bytes + pos, n - pos, &used, &rev);
        pos += used;
        if (rev.event == FLT_PROTO_EV_NONE) {
            break;
        }
        FUZZ_ASSERT(rev.event == FLT_PROTO_EV_CONTROL || rev.event == FLT_PROTO_EV_REJECTED);
        flt_outbox_event_t ev;
        FUZZ_ASSERT(flt_outbox_on_control(&h.ob, &rev, &ev) == FLT_OK);
        check_event(&ev);
    }
}

static void push_reply(const uint8_t *bytes, size_t n)
{
    if (h.n_replies == MAX_REPLIES) {
        memmove(&h.replies[0], &h.replies[1], (MAX_REPLIES - 1u) * sizeof h.replies[0]);
        h.n_replies--;
    }
    memcpy(h.replies[h.n_replies].bytes, bytes, n);
    h.replies[h.n_replies].len = n;
    h.n_replies++;
}

/* Bytes arriving at the far side: it delivers, and queues its answers. */
static void to_receiver(const uint8_t *bytes, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        flt_proto_rx_event_t ev;
        size_t used = 0;
        (void)flt_proto_rx_feed_bytes(&h.rx, bytes + pos, n - pos, &used, &ev);
        pos += used;
        if (ev.event == FLT_PROTO_EV_NONE) {
            break;
        }
        if (ev.event == FLT_PROTO_EV_MESSAGE) {
            FUZZ_ASSERT(ev.msg_len <= SLOT_CAP && ev.header.seq > h.delivered_seq);
            FUZZ_ASSERT(was_queued(ev.header.type, h.rx_msg, ev.msg_len));
            h.delivered.type = ev.header.type;
            h.delivered.len = ev.msg_len;
            memcpy(h.delivered.bytes, h.rx_msg, ev.msg_len);
            h.have_delivered = 1;
            h.delivered_seq = ev.header.seq;
        }
        if (ev.reply != 0u) {
            wire_t w;
            FUZZ_ASSERT(flt_proto_tx_reply(&h.rx_tx, &ev, w.bytes, sizeof w.bytes, &w.len) ==
                        FLT_OK);
            push_reply(w.bytes, w.len);
        }
    }
}

static void op_queue(fuzz_in_t *in)
{
    static const uint8_t types[] = {FLT_MSG_HELLO,  FLT_MSG_GLOBAL, FLT_MSG_TRAIN, FLT_MSG_DELTA,
                                    FLT_MSG_STATUS, FLT_MSG_LOG,    FLT_MSG_ERROR};
    uint32_t slot = fuzz_u8(in) % h.n_slots;
    uint8_t type = types[fuzz_u8(in) % sizeof types];
    size_t len = fuzz_u16(in) % (SLOT_CAP + 1u), got = 0;
    uint8_t fill = fuzz_u8(in);
    const uint8_t *p = fuzz_take(in, len, &got);
    copy_t *c = &h.in_slot[slot];
    c->type = type;
    c->len = len;
    memset(c->bytes, fill, len);
    if (got > 0u) {
        memcpy(c->bytes, p, got);
    }
    memcpy(h.bufs[slot], c->bytes, len);
    h.queued[h.n_queued % MAX_QUEUED] = *c;
    h.n_queued++;
    FUZZ_ASSERT(flt_outbox_queue(&h.ob, slot, type, len) == FLT_OK);
    h.first_seq[slot] = 0; /* no chunk in flight yet */
}

static void op_service(fuzz_in_t *in)
{
    h.now += 8u * fuzz_u8(in);
    uint8_t fate = fuzz_u8(in);
    uint16_t at = fuzz_u16(in);
    wire_t w;
    flt_outbox_event_t ev;
    flt_status_t s = flt_outbox_service(&h.ob, h.now, w.bytes, sizeof w.bytes, &ev);
    FUZZ_ASSERT(s == FLT_OK || ev.event == FLT_OUTBOX_EV_FAILED);
    if (ev.event != FLT_OUTBOX_EV_FRAME) {
        check_event(&ev);
        return;
    }
    w.len = ev.frame_len;
    FUZZ_ASSERT(ev.slot < h.n_slots && (h.slots[ev.slot].queued != 0u) == !ev.done);
    const copy_t *c = &h.in_slot[ev.slot];
    const int burst = h.on_host && c->type == FLT_MSG_GLOBAL && ev.chunk_count <= 4u;
    FUZZ_ASSERT(ev.done == (burst && ev.index + 1u == ev.chunk_count));
    FUZZ_ASSERT(!burst || ev.tries == 1u);
    FUZZ_ASSERT(ev.tries >= 1u && ev.tries <= h.retries + 1u && w.len <= sizeof w.bytes);
    if (ev.tries == 1u) {
        h.first[ev.slot] = w;
        h.first_seq[ev.slot] = ev.seq;
    } else {
        const wire_t *f = &h.first[ev.slot];
        FUZZ_ASSERT(h.first_seq[ev.slot] == ev.seq && f->len == w.len &&
                    memcmp(f->bytes, w.bytes, w.len) == 0);
    }
    check_event(&ev);
    switch (fate % 4u) {
    case 0:
        to_receiver(w.bytes, w.len);
        break;
    case 1:
        break; /* lost */
    case 2:
        to_receiver(w.bytes, w.len);
        to_receiver(w.bytes, w.len);
        break;
    default:
        w.bytes[at % (w.len - 1u)] ^= (uint8_t)(fate | 1u);
        to_receiver(w.bytes, w.len);
        break;
    }
}

static void op_answers(fuzz_in_t *in)
{
    uint32_t n = h.n_replies;
    wire_t late;
    int have_late = 0;
    h.n_replies = 0;
    for (uint32_t i = 0; i < n; ++i) {
        const wire_t *r = &h.replies[i];
        switch (fuzz_u8(in) % 3u) {
        case 0:
            to_sender(r->bytes, r->len);
            h.last_reply = *r;
            break;
        case 1:
            break; /* lost */
        default:
            if (have_late) {
                to_sender(late.bytes, late.len);
            }
            late = *r;
            have_late = 1;
            break;
        }
    }
    if (have_late) {
        to_sender(late.bytes, late.len);
        h.last_reply = late;
    }
}

static void op_answered(fuzz_in_t *in)
{
    const uint32_t slot = fuzz_u8(in) % h.n_slots;
    const int32_t head = flt_outbox_head(&h.ob);
    flt_outbox_event_t ev;
    FUZZ_ASSERT(flt_outbox_answered(&h.ob, h.n_slots, &ev) == FLT_ERR_ARG);
    if (head == (int32_t)slot && h.first_seq[slot] != 0u && h.have_delivered &&
        h.delivered_seq == h.first_seq[slot]) {
        /* the receiver has the head's (one-frame) message: the host saw its answer */
        FUZZ_ASSERT(flt_outbox_answered(&h.ob, slot, &ev) == FLT_OK);
        FUZZ_ASSERT(ev.event == FLT_OUTBOX_EV_DONE && ev.slot == slot);
        check_event(&ev);
    } else if (head != (int32_t)slot || h.first_seq[slot] == 0u) {
        FUZZ_ASSERT(flt_outbox_answered(&h.ob, slot, &ev) == FLT_OK);
        FUZZ_ASSERT(ev.event == FLT_OUTBOX_EV_NONE && (head < 0 || h.slots[head].queued));
    }
}

static void op_cancel(fuzz_in_t *in)
{
    const uint32_t slot = fuzz_u8(in) % h.n_slots;
    FUZZ_ASSERT(flt_outbox_cancel(&h.ob, h.n_slots) == FLT_ERR_ARG);
    FUZZ_ASSERT(flt_outbox_cancel(&h.ob, slot) == FLT_OK);
    FUZZ_ASSERT(!h.slots[slot].queued);
    h.first_seq[slot] = 0; /* no chunk of this slot in flight now */
    flt_outbox_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.event = FLT_OUTBOX_EV_NONE;
    check_event(&ev); /* the head moved on (or the outbox is idle) */
}

static uint8_t *heap(size_t n)
{
    uint8_t *p = (uint8_t *)malloc(n);
    FUZZ_ASSERT(p != NULL);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = fuzz_in(data, size);
    memset(&h, 0, sizeof h);
    int on_host = fuzz_u8(&in) & 1u;
    h.on_host = on_host;
    h.n_slots = 1u + fuzz_u8(&in) % MAX_SLOTS;
    h.retries = fuzz_u8(&in) % 4u;
    uint16_t chunk = (uint16_t)(1u + fuzz_u8(&in));
    h.now = fuzz_u32(&in);
    FUZZ_ASSERT(flt_proto_tx_init(&h.tx, key, FUZZ_DEVICE_ID, on_host, 1u) == FLT_OK);
    FUZZ_ASSERT(flt_proto_tx_set_chunk(&h.tx, chunk) == FLT_OK);
    FUZZ_ASSERT(flt_outbox_init(&h.ob, &h.tx, h.slots, h.n_slots, 400u) == FLT_OK);
    for (uint32_t i = 0; i < h.n_slots; ++i) {
        h.bufs[i] = heap(SLOT_CAP);
        FUZZ_ASSERT(flt_outbox_slot(&h.ob, i, h.bufs[i], SLOT_CAP, h.retries) == FLT_OK);
    }
    h.back_frame = heap(FLT_PROTO_MAX_FRAME);
    h.back_msg = heap(16);
    h.rx_frame = heap(FLT_PROTO_MAX_FRAME);
    h.rx_msg = heap(SLOT_CAP);
    FUZZ_ASSERT(flt_proto_rx_init(&h.back_rx, key, FUZZ_DEVICE_ID, on_host, h.back_frame,
                                  FLT_PROTO_MAX_FRAME, h.back_msg, 16) == FLT_OK);
    FUZZ_ASSERT(flt_proto_rx_init(&h.rx, key, FUZZ_DEVICE_ID, !on_host, h.rx_frame,
                                  FLT_PROTO_MAX_FRAME, h.rx_msg, SLOT_CAP) == FLT_OK);
    FUZZ_ASSERT(flt_proto_tx_init(&h.rx_tx, key, FUZZ_DEVICE_ID, !on_host, 1u) == FLT_OK);
    while (fuzz_left(&in) > 0u) {
        switch (fuzz_u8(&in) % 8u) {
        case 0:
            op_queue(&in);
            break;
        case 1:
            op_service(&in);
            break;
        case 2:
            op_answers(&in);
            break;
        case 3: {
            size_t n = 0;
            const uint8_t *p = fuzz_take(&in, fuzz_u8(&in), &n);
            if (n > 0u) {
                to_sender(p, n);
            }
            break;
        }
        case 4:
            if (h.last_reply.len > 0u) {
                to_sender(h.last_reply.bytes, h.last_reply.len);
            }
            break;
        case 5:
            h.now += fuzz_u32(&in);
            break;
        case 6:
            op_cancel(&in);
            break;
        default:
            op_answered(&in);
            break;
        }
    }
    for (uint32_t i = 0; i < h.n_slots; ++i) {
        free(h.bufs[i]);
    }
    free(h.back_frame);
    free(h.back_msg);
    free(h.rx_frame);
    free(h.rx_msg);
    return 0;
}
