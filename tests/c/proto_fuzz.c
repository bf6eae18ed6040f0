/* proto_fuzz.c - seeded random-mutation fuzzing of the protocol receiver and decoders (run
 * under ASan+UBSan from tests/test_proto_fuzz.py).
 *
 *   proto_fuzz <seed> <iterations>
 *
 * Base inputs are valid wire streams from the real sender (flt_proto_tx_chunk /
 * flt_proto_tx_reply: HELLO, TRAIN, STATUS, a 3-chunk GLOBAL, ACK). Each iteration mutates one
 * (bit flips, byte overwrites, insertions incl. 0x00, deletions, truncation, duplication,
 * splices, pure noise), copies it into a heap buffer of exactly its length and feeds it byte by
 * byte into a receiver whose frame and message buffers are heap blocks of exactly their
 * capacity (so ASan sees any access past them). Invariants checked on every event: a status
 * inside the enum, events consistent with the status, replies only where the contract allows
 * them (no ACK for an accepted host TRAIN or small GLOBAL), and every accepted message
 * byte-identical to a message the sender really sent (no corrupted payload is ever accepted). A
 * second receiver takes the same bytes through flt_proto_rx_feed_bytes and must report the same
 * events. Each iteration also runs flt_msg_check and flt_cobs_decode on mutated bytes. Then the
 * outbox (outbox.h) sends messages over a lossy in-memory line to a receiver that answers with
 * flt_proto_tx_reply, through a lossy line back: every message must arrive exactly once, in order,
 * intact. Prints one summary line; exit status 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/link.h"
#include "proto/outbox.h"

#define MSG_CAP 900u
#define MAX_INPUT 4096u
#define N_BASE 6

static uint32_t rng_state;

static uint32_t rnd(void)
{
    uint32_t x = rng_state; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

static uint32_t below(uint32_t m)
{
    return m == 0u ? 0u : rnd() % m;
}

static const uint8_t key[FLT_PROTO_KEY_SIZE] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

typedef struct {
    uint8_t wire[MAX_INPUT];
    size_t len;
} stream_t;

/* messages the sender really sent, by the seq of their last chunk */
typedef struct {
    uint32_t last_seq;
    uint8_t type;
    uint8_t payload[MSG_CAP];
    size_t len;
} sent_t;

static stream_t base[N_BASE];
static sent_t sent[N_BASE];
static size_t n_sent;

static int fail(const char *what, unsigned long it)
{
    printf("FAIL %s at iteration %lu\n", what, it);
    return 1;
}

static void add_message(flt_proto_tx_t *tx, stream_t *s, uint8_t type, const uint8_t *msg,
                        size_t len)
{
    flt_proto_outgoing_t o;
    uint16_t i;
    size_t n = 0;
    if (flt_proto_tx_begin(tx, type, len, &o) != FLT_OK) {
        abort();
    }
    for (i = 0; i < o.chunk_count; ++i) {
        if (flt_proto_tx_chunk(tx, &o, msg, i, s->wire + s->len, MAX_INPUT - s->len, &n) !=
            FLT_OK) {
            abort();
        }
        s->len += n;
    }
    sent[n_sent].last_seq = o.first_seq + o.chunk_count - 1u;
    sent[n_sent].type = type;
    memcpy(sent[n_sent].payload, msg, len);
    sent[n_sent].len = len;
    n_sent++;
}

static void make_bases(void)
{
    flt_proto_tx_t tx;
    uint8_t buf[MSG_CAP];
    size_t n = 0, i;
    flt_msg_hello_t hello;
    flt_msg_train_t train;
    flt_msg_text_t text;
    flt_msg_global_t glob;
    float params[200];
    uint8_t body[800];
    flt_proto_rx_event_t ev;

    if (flt_proto_tx_init(&tx, key, 0x42u, 1, 1u) != FLT_OK) {
        abort();
    }
    memset(&hello, 0, sizeof hello);
    strcpy(hello.name, "fuzz-board");
    hello.capabilities = 3;
    hello.model_version = 7;
    if (flt_msg_hello_encode(&hello, buf, sizeof buf, &n) != FLT_OK) {
        abort();
    }
    add_message(&tx, &base[0], FLT_MSG_HELLO, buf, n);

    memset(&train, 0, sizeof train);
    train.round = 2;
    train.epochs = 1;
    train.batch_size = 8;
    train.learning_rate = 0.125f;
    train.momentum = 0.5f;
    train.topk_kind = FLT_TOPK_FRACTION;
    train.topk_fraction = 0.25f;
    if (flt_msg_train_encode(&train, buf, sizeof buf, &n) != FLT_OK) {
        abort();
    }
    add_message(&tx, &base[1], FLT_MSG_TRAIN, buf, n);

    text.code = 0;
    text.text = "status: all good";
    text.text_len = strlen(text.text);
    if (flt_msg_text_encode(FLT_MSG_STATUS, &text, buf, sizeof buf, &n) != FLT_OK) {
        abort();
    }
    add_message(&tx, &base[2], FLT_MSG_STATUS, buf, n);

    for (i = 0; i < 200u; ++i) {
        params[i] = (float)((int)i - 100) / 64.0f;
        flt_le_put32(body + 4u * i, 0);
        memcpy(body + 4u * i, &params[i], 4); /* host is little-endian in these tests */
    }
    glob.model_version = 3;
    glob.base_version = 0;
    glob.kind = FLT_GLOBAL_FULL;
    glob.body = body;
    glob.body_len = 800;
    if (flt_msg_global_encode(&glob, buf, sizeof buf, &n) != FLT_OK) {
        abort();
    }
    add_message(&tx, &base[3], FLT_MSG_GLOBAL, buf, n); /* 812 bytes: 4 chunks */

    /* two messages back to back plus an ACK of the device's seq 9 */
    memcpy(base[4].wire, base[1].wire, base[1].len);
    memcpy(base[4].wire + base[1].len, base[2].wire, base[2].len);
    base[4].len = base[1].len + base[2].len;
    memset(&ev, 0, sizeof ev);
    ev.reply = FLT_MSG_ACK;
    ev.reply_seq = 9;
    if (flt_proto_tx_reply(&tx, &ev, base[4].wire + base[4].len, MAX_INPUT - base[4].len, &n) !=
        FLT_OK) {
        abort();
    }
    base[4].len += n;
    /* base 5: noise around a valid frame */
    for (i = 0; i < 40u; ++i) {
        base[5].wire[i] = (uint8_t)rnd();
    }
    memcpy(base[5].wire + 40, base[0].wire, base[0].len);
    base[5].len = 40u + base[0].len;
}

static size_t mutate(uint8_t *buf, size_t len)
{
    uint32_t rounds = 1u + below(4u), r;
    for (r = 0; r < rounds; ++r) {
        uint32_t op = below(9u);
        if (op == 0u && len > 0u) { /* bit flip */
            size_t at = below((uint32_t)len);
            buf[at] ^= (uint8_t)(1u << below(8u));
        } else if (op == 1u && len > 0u) { /* overwrite a byte */
            buf[below((uint32_t)len)] = (uint8_t)rnd();
        } else if (op == 2u && len + 8u < MAX_INPUT) { /* insert bytes (maybe 0x00) */
            size_t at = below((uint32_t)len + 1u), k = 1u + below(8u), i;
            memmove(buf + at + k, buf + at, len - at);
            for (i = 0; i < k; ++i) {
                buf[at + i] = below(4u) == 0u ? 0u : (uint8_t)rnd();
            }
            len += k;
        } else if (op == 3u && len > 0u) { /* delete a range */
            size_t at = below((uint32_t)len), k = 1u + below(16u);
            if (k > len - at) {
                k = len - at;
            }
            memmove(buf + at, buf + at + k, len - at - k);
            len -= k;
        } else if (op == 4u && len > 0u) { /* truncate */
            len = below((uint32_t)len);
        } else if (op == 5u && len > 0u && 2u * len < MAX_INPUT) { /* duplicate a tail */
            size_t at = below((uint32_t)len);
            memcpy(buf + len, buf + at, len - at);
            len += len - at;
        } else if (op == 6u) { /* splice another base in */
            const stream_t *o = &base[below(N_BASE)];
            size_t at = below((uint32_t)len + 1u);
            size_t k = below((uint32_t)o->len + 1u);
            if (at + k < MAX_INPUT) {
                memcpy(buf + at, o->wire, k);
                if (at + k > len) {
                    len = at + k;
                }
            }
        } else if (op == 7u) { /* pure noise */
            size_t i;
            len = below(600u);
            for (i = 0; i < len; ++i) {
                buf[i] = (uint8_t)rnd();
            }
        } else if (len > 0u) { /* zero a byte: splits a frame */
            buf[below((uint32_t)len)] = 0;
        }
    }
    return len;
}

/* One direction of a line (line_send drops 1 byte in 2000 and flips a bit in 1 in 1000). */
typedef struct {
    uint8_t buf[8192];
    size_t len;
} line_t;

static void line_send(line_t *l, const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n && l->len < sizeof l->buf; ++i) {
        uint8_t b = data[i];
        if (below(2000u) == 0u) {
            continue; /* dropped */
        }
        if (below(1000u) == 0u) {
            b ^= (uint8_t)(1u << below(8u));
        }
        l->buf[l->len++] = b;
    }
}

/* Device outbox (3 slots, like flt_device.c) -> lossy line -> host receiver, whose ACK/NACKs
 * come back over a lossy line. Returns the number of messages delivered (0 on a failure). */
static unsigned long outbox_exchange(void)
{
    static uint8_t slot_buf[3][MSG_CAP];
    static uint8_t want[12][MSG_CAP];
    static line_t down, up;
    static uint8_t hframe[FLT_PROTO_MAX_FRAME], hmsg[MSG_CAP];
    size_t want_len[12];
    uint8_t want_type[12];
    flt_proto_tx_t dtx, htx;
    flt_proto_rx_t hrx, drx;
    static uint8_t dframe[FLT_PROTO_MAX_FRAME], dmsg[64];
    flt_outbox_slot_t slots[3];
    flt_outbox_t ob;
    uint8_t wire_out[FLT_PROTO_MAX_WIRE];
    unsigned long n_got = 0, queued = 0;
    uint32_t now = 0xFFFFF000u; /* the clock wraps during the exchange */
    uint32_t step;
    if (flt_proto_tx_init(&dtx, key, 0x42u, 0, 1u) != FLT_OK ||
        flt_proto_tx_set_chunk(&dtx, (uint16_t)(32u + below(225u))) != FLT_OK ||
        flt_proto_tx_init(&htx, key, 0x42u, 1, 1u) != FLT_OK ||
        flt_proto_rx_init(&hrx, key, 0x42u, 1, hframe, sizeof hframe, hmsg, sizeof hmsg) !=
            FLT_OK ||
        flt_proto_rx_init(&drx, key, 0x42u, 0, dframe, sizeof dframe, dmsg, sizeof dmsg) !=
            FLT_OK ||
        flt_outbox_init(&ob, &dtx, slots, 3u, 100u) != FLT_OK) {
        return 0;
    }
    for (step = 0; step < 3u; ++step) {
        if (flt_outbox_slot(&ob, step, slot_buf[step], MSG_CAP, 0xFFFFFFFFu) != FLT_OK) {
            return 0;
        }
    }
    down.len = up.len = 0;
    for (step = 0; step < 200000u && n_got < 12u; ++step, now += 7u) {
        flt_outbox_event_t oev;
        size_t i;
        /* queue the next message into a free slot, one at a time, up to 12 in all */
        if (queued < 12u && flt_outbox_head(&ob) < 0) {
            const sent_t *sm = &sent[below((uint32_t)n_sent)];
            uint32_t slot = below(3u);
            memcpy(slot_buf[slot], sm->payload, sm->len);
            memcpy(want[queued], sm->payload, sm->len);
            want_len[queued] = sm->len;
            want_type[queued] = sm->type;
            if (flt_outbox_queue(&ob, slot, sm->type, sm->len) != FLT_OK) {
                return 0;
            }
            queued++;
        }
        if (flt_outbox_service(&ob, now, wire_out, sizeof wire_out, &oev) != FLT_OK) {
            return 0;
        }
        if (oev.event == FLT_OUTBOX_EV_FRAME) {
            line_send(&down, wire_out, oev.frame_len);
        } else if (oev.event != FLT_OUTBOX_EV_NONE) {
            return 0; /* retries are unlimited: no GAVE_UP, and the host never NACKs */
        }
        /* the host reads the line and answers */
        for (i = 0; i < down.len; ++i) {
            flt_proto_rx_event_t ev;
            flt_status_t s = flt_proto_rx_feed(&hrx, down.buf[i], &ev);
            (void)s;
            if (ev.reply != 0u) {
                size_t n = 0;
                if (flt_proto_tx_reply(&htx, &ev, wire_out, sizeof wire_out, &n) != FLT_OK) {
                    return 0;
                }
                line_send(&up, wire_out, n);
            }
            if (ev.event == FLT_PROTO_EV_MESSAGE) {
                if (n_got >= queued || ev.header.type != want_type[n_got] ||
                    ev.msg_len != want_len[n_got] || memcmp(hmsg, want[n_got], ev.msg_len) != 0) {
                    return 0; /* out of order, duplicated or corrupted */
                }
                n_got++;
            }
        }
        down.len = 0;
        /* the device reads the answers */
        for (i = 0; i < up.len; ++i) {
            flt_proto_rx_event_t ev;
            flt_status_t s = flt_proto_rx_feed(&drx, up.buf[i], &ev);
            (void)s;
            if (ev.event == FLT_PROTO_EV_CONTROL &&
                flt_outbox_on_control(&ob, &ev, &oev) != FLT_OK) {
                return 0;
            }
        }
        up.len = 0;
    }
    return n_got == 12u ? n_got : 0u;
}

int main(int argc, char **argv)
{
    unsigned long iters, it, inputs = 0, accepted = 0, rejected = 0, messages = 0;
    uint8_t *scratch = malloc(MAX_INPUT);
    uint8_t *frame = malloc(FLT_PROTO_MAX_FRAME);
    uint8_t *msg = malloc(MSG_CAP);
    uint8_t *frame2 = malloc(FLT_PROTO_MAX_FRAME);
    uint8_t *msg2 = malloc(MSG_CAP);
    flt_proto_rx_t rx, rx2;
    unsigned long outbox_messages = 0;
    if (argc != 3 || scratch == NULL || frame == NULL || msg == NULL || frame2 == NULL ||
        msg2 == NULL) {
        fprintf(stderr, "usage: proto_fuzz <seed> <iterations>\n");
        return 2;
    }
    rng_state = (uint32_t)strtoul(argv[1], NULL, 10) | 1u;
    iters = strtoul(argv[2], NULL, 10);
    make_bases();
    if (flt_proto_rx_init(&rx, key, 0x42u, 0, frame, FLT_PROTO_MAX_FRAME, msg, MSG_CAP) != FLT_OK) {
        return fail("init", 0);
    }
    /* the unmutated bases must all be accepted */
    {
        size_t b, i;
        unsigned long got = 0;
        for (b = 0; b < 4u; ++b) {
            for (i = 0; i < base[b].len; ++i) {
                flt_proto_rx_event_t ev;
                flt_status_t s = flt_proto_rx_feed(&rx, base[b].wire[i], &ev);
                if (s != FLT_OK) {
                    return fail("base stream rejected", b);
                }
                got += ev.event == FLT_PROTO_EV_MESSAGE;
            }
        }
        if (got != 4u) {
            return fail("base messages not delivered", got);
        }
    }
    for (it = 0; it < iters; ++it) {
        const stream_t *b = &base[below(N_BASE)];
        size_t len, i;
        uint8_t *input;
        memcpy(scratch, b->wire, b->len);
        len = mutate(scratch, b->len);
        input = malloc(len == 0u ? 1u : len);
        if (input == NULL) {
            return fail("malloc", it);
        }
        memcpy(input, scratch, len);
        if (it == 0u || below(2u) == 0u) {
            if (flt_proto_rx_init(&rx, key, 0x42u, 0, frame, FLT_PROTO_MAX_FRAME, msg, MSG_CAP) !=
                    FLT_OK ||
                flt_proto_rx_init(&rx2, key, 0x42u, 0, frame2, FLT_PROTO_MAX_FRAME, msg2,
                                  MSG_CAP) != FLT_OK) {
                return fail("re-init", it);
            }
        }
        size_t fed = 0; /* bytes of input rx2 has consumed */
        for (i = 0; i < len; ++i) {
            flt_proto_rx_event_t ev;
            flt_status_t s = flt_proto_rx_feed(&rx, input[i], &ev);
            if (ev.event != FLT_PROTO_EV_NONE) {
                flt_proto_rx_event_t ev2;
                size_t used = 0;
                flt_status_t s2 =
                    flt_proto_rx_feed_bytes(&rx2, input + fed, i + 1u - fed, &used, &ev2);
                fed += used;
                if (s2 != s || fed != i + 1u || ev2.event != ev.event || ev2.reply != ev.reply ||
                    ev2.reply_code != ev.reply_code || ev2.reply_seq != ev.reply_seq ||
                    ev2.msg_len != ev.msg_len) {
                    return fail("feed_bytes differs from feed", it);
                }
            }
            if ((int)s < 0 || (int)s >= (int)FLT_STATUS_COUNT) {
                return fail("status outside the enum", it);
            }
            if (rx.frame_len > rx.frame_cap || rx.msg_len > rx.msg_cap) {
                return fail("state past a buffer", it);
            }
            if (s != FLT_OK) {
                rejected++;
                if (ev.event != FLT_PROTO_EV_REJECTED) {
                    return fail("error without REJECTED event", it);
                }
                if (ev.reply == FLT_MSG_ACK && s != FLT_ERR_DUPLICATE) {
                    return fail("ACK of a rejected frame", it);
                }
                if (ev.reply == FLT_MSG_NACK && ev.reply_code != (uint8_t)s) {
                    return fail("NACK code differs from the status", it);
                }
                continue;
            }
            if (ev.event == FLT_PROTO_EV_NONE) {
                continue;
            }
            accepted++;
            if (ev.event == FLT_PROTO_EV_MESSAGE) {
                size_t k;
                int found = 0;
                messages++;
                for (k = 0; k < n_sent; ++k) {
                    if (sent[k].last_seq == ev.header.seq && sent[k].type == ev.header.type &&
                        sent[k].len == ev.msg_len &&
                        memcmp(sent[k].payload, msg, ev.msg_len) == 0) {
                        found = 1;
                    }
                }
                if (!found) {
                    return fail("accepted a message that was never sent", it);
                }
                if (flt_msg_check(ev.header.type, msg, ev.msg_len) != FLT_OK) {
                    return fail("delivered message does not validate", it);
                }
            }
            /* an ACK for every accepted data frame but those of the answered messages (a host
             * TRAIN, a host GLOBAL of at most 4 chunks: docs/protocol.md), which get none */
            if (ev.event != FLT_PROTO_EV_CONTROL) {
                const int answered =
                    (ev.header.flags & FLT_PROTO_FLAG_FROM_HOST) != 0u &&
                    (ev.header.type == FLT_MSG_TRAIN ||
                     (ev.header.type == FLT_MSG_GLOBAL && ev.header.chunk_count <= 4u));
                if (ev.reply != (answered ? 0u : (uint8_t)FLT_MSG_ACK)) {
                    return fail(answered ? "ACK of an answered message"
                                         : "accepted data frame without ACK",
                                it);
                }
            }
        }
        if (fed < len) { /* the tail after the last frame end: no event */
            flt_proto_rx_event_t ev2;
            size_t used = 0;
            if (flt_proto_rx_feed_bytes(&rx2, input + fed, len - fed, &used, &ev2) != FLT_OK ||
                used != len - fed || ev2.event != FLT_PROTO_EV_NONE) {
                return fail("feed_bytes tail", it);
            }
        }
        inputs++;
        /* message decoders on mutated payloads, exact-size heap copies */
        {
            const sent_t *sm = &sent[below((uint32_t)n_sent)];
            uint8_t tmp[MSG_CAP + 64];
            size_t n;
            uint8_t *p;
            uint8_t type = below(8u) == 0u ? (uint8_t)below(12u) : sm->type;
            memcpy(tmp, sm->payload, sm->len);
            n = sm->len;
            if (below(4u) != 0u && n > 0u) {
                tmp[below((uint32_t)n)] ^= (uint8_t)(1u << below(8u));
            }
            if (below(3u) == 0u) {
                n = below((uint32_t)n + 1u);
            } else if (below(5u) == 0u) {
                size_t extra = below(40u), j;
                for (j = 0; j < extra; ++j) {
                    tmp[n + j] = (uint8_t)rnd();
                }
                n += extra;
            }
            p = malloc(n == 0u ? 1u : n);
            if (p == NULL) {
                return fail("malloc", it);
            }
            memcpy(p, tmp, n);
            if ((int)flt_msg_check(type, n == 0u ? NULL : p, n) >= (int)FLT_STATUS_COUNT) {
                return fail("msg_check status outside the enum", it);
            }
            {
                uint8_t *out = malloc(n == 0u ? 1u : n);
                size_t got = 0;
                if (out == NULL) {
                    return fail("malloc", it);
                }
                if (flt_cobs_decode(p, n, out, n, &got) == FLT_OK && got > n) {
                    return fail("cobs decode longer than its buffer", it);
                }
                free(out);
            }
            free(p);
            inputs++;
        }
        free(input);
    }
    for (it = 0; it < 40u; ++it) {
        unsigned long got = outbox_exchange();
        if (got == 0u) {
            return fail("outbox exchange", it);
        }
        outbox_messages += got;
    }
    printf("ok inputs %lu frames_accepted %lu frames_rejected %lu messages %lu "
           "outbox_messages %lu\n",
           inputs, accepted, rejected, messages, outbox_messages);
    free(scratch);
    free(frame);
    free(msg);
    free(frame2);
    free(msg2);
    return 0;
}
