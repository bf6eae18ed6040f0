/* outbox.h - the sender half of the reliability layer: whole messages queued in slots, sent
 * chunk by chunk (stop-and-wait), retransmitted on a timer, given up after a retry budget
 * (semantics: docs/protocol.md "Reliability"). The device loop (firmware/app/flt_device.c)
 * and the host's session (fltiny/bridge/session.py, through fltiny/native) both run it.
 *
 * Contract
 * - Slots are caller-owned (flt_outbox_slot_t[n_slots]); each slot names a caller-owned
 *   message buffer buf[cap] that the caller fills before flt_outbox_queue and must not touch
 *   while the slot is queued. The outbox references tx (sequence numbers, key, chunk size);
 *   tx must outlive it. Nothing is allocated; there is no global state; time is the caller's
 *   millisecond clock (wrapping uint32 arithmetic, so a clock that wraps is fine).
 * - Order: queued slots are sent one message at a time, oldest first (FIFO by queue time).
 *   A slot's sequence numbers are taken (flt_proto_tx_begin) when it reaches the head, so a
 *   message queued behind a long transfer does not waste numbers. Queueing a slot that is
 *   already queued replaces its message and moves it to the back.
 * - flt_outbox_service(now) does at most one thing and reports it in *ev:
 *     FRAME    out[0..ev->frame_len-1] is a frame to write (ev->tries == 1: first
 *              transmission of chunk ev->index; > 1: a retransmission, byte-identical);
 *              ev->done 1: the frame completed the slot (below);
 *     GAVE_UP  the head chunk was sent retries + 1 times and retx_ms passed after the last
 *              one without its ACK: the slot is dropped (status FLT_OK);
 *     FAILED   tx_begin or tx_chunk failed (the status is returned): the slot is dropped;
 *     NONE     nothing due (empty, or waiting for an ACK).
 *   A frame that cannot be written (link down) needs no special handling: the timer resends.
 * - flt_outbox_on_control(rx_ev) takes an ACK/NACK event from the receiver (FLT_PROTO_EV_
 *   CONTROL). It acts only on an ACK/NACK of the chunk in flight (acked_seq == its seq, after
 *   at least one transmission); anything else is stale and ignored (ev NONE). An ACK moves to
 *   the next chunk (ev NONE) or, after the last chunk, completes the slot (DONE); a NACK drops
 *   the slot (NACKED, ev->code = the peer's flt_status_t).
 * - Answered messages (link.h flt_proto_ack_mode, for the tx's direction): a BY_NEXT message's
 *   frames are each sent once, back to back (no wait, no retransmission); the FRAME of its
 *   last chunk completes the slot (ev->done 1; its confirmation is the answer to the message
 *   after it). A BY_ANSWER message's frame is retransmitted every answer_ms (default retx_ms,
 *   flt_outbox_set_answer_ms) at most retries times like any frame, and completes on an ACK
 *   (the peer's duplicate answer), on a NACK, or when the caller got its answer:
 *   flt_outbox_answered(slot) completes it (DONE) once it was sent, else changes nothing.
 * - flt_outbox_cancel(slot) drops a queued slot's message, sent in part or not at all (a
 *   queued slot's buffer may be rewritten only after this); its sequence numbers are not
 *   reused. A peer that got some of its chunks abandons that message when the next one
 *   begins (link.h). Cancelling a slot that is not queued changes nothing.
 * - ev->slot, ev->seq, ev->index, ev->chunk_count name the slot and chunk concerned for every
 *   event other than NONE.
 * Failures: FLT_ERR_ARG for NULL pointers, a slot index out of range (cancel too), len > cap,
 * a control type, n_slots == 0 or retx_ms == 0 (state unchanged); from service, the status of
 * flt_proto_tx_begin / flt_proto_tx_chunk (FLT_ERR_STATE: sequence numbers exhausted;
 * FLT_ERR_NOMEM: cap too small, FLT_PROTO_MAX_WIRE always suffices) with event FAILED.
 */
#ifndef FLT_PROTO_OUTBOX_H
#define FLT_PROTO_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "link.h"

typedef struct {
    /* set by flt_outbox_slot */
    uint8_t *buf;
    size_t cap;
    uint32_t retries; /* retransmissions allowed per chunk (0xFFFFFFFF: retry forever) */
    /* state */
    uint8_t queued;
    uint8_t type;
    size_t len;
    uint32_t order;
    flt_proto_outgoing_t o; /* o.chunk_count == 0 until it reaches the head */
    uint16_t index;         /* chunk in flight */
    uint32_t tries;         /* transmissions of that chunk */
    uint32_t sent_at;
} flt_outbox_slot_t;

typedef struct {
    flt_proto_tx_t *tx;
    flt_outbox_slot_t *slots;
    uint32_t n_slots;
    uint32_t retx_ms;
    uint32_t answer_ms; /* retransmission time of a BY_ANSWER frame (link.h) */
    uint32_t counter;
} flt_outbox_t;

typedef enum {
    FLT_OUTBOX_EV_NONE = 0,
    FLT_OUTBOX_EV_FRAME = 1,
    FLT_OUTBOX_EV_DONE = 2,
    FLT_OUTBOX_EV_NACKED = 3,
    FLT_OUTBOX_EV_GAVE_UP = 4,
    FLT_OUTBOX_EV_FAILED = 5
} flt_outbox_event_kind_t;

typedef struct {
    uint8_t event; /* flt_outbox_event_kind_t */
    uint8_t code;  /* NACKED: the peer's flt_status_t */
    uint8_t done;  /* FRAME: 1 when this frame completed the slot (a BY_NEXT message) */
    uint16_t index;
    uint16_t chunk_count;
    uint32_t slot;
    uint32_t seq;
    uint32_t tries;   /* FRAME: transmissions of this chunk including this one */
    size_t frame_len; /* FRAME */
} flt_outbox_event_t;

/* Empty outbox over n_slots slots (all unqueued; buffers set with flt_outbox_slot). */
FLT_NODISCARD flt_status_t flt_outbox_init(flt_outbox_t *ob, flt_proto_tx_t *tx,
                                           flt_outbox_slot_t *slots, uint32_t n_slots,
                                           uint32_t retx_ms);
FLT_NODISCARD flt_status_t flt_outbox_slot(flt_outbox_t *ob, uint32_t slot, uint8_t *buf,
                                           size_t cap, uint32_t retries);
/* The message is slots[slot].buf[0..len-1], of message type `type`. */
FLT_NODISCARD flt_status_t flt_outbox_queue(flt_outbox_t *ob, uint32_t slot, uint8_t type,
                                            size_t len);
FLT_NODISCARD flt_status_t flt_outbox_service(flt_outbox_t *ob, uint32_t now_ms, uint8_t *out,
                                              size_t cap, flt_outbox_event_t *ev);
FLT_NODISCARD flt_status_t flt_outbox_on_control(flt_outbox_t *ob,
                                                 const flt_proto_rx_event_t *rx_ev,
                                                 flt_outbox_event_t *ev);
FLT_NODISCARD flt_status_t flt_outbox_cancel(flt_outbox_t *ob, uint32_t slot);
/* The answer to slot's message arrived (a BY_ANSWER message): DONE in *ev when the slot is
 * the head and was sent, else ev NONE and nothing changes. FLT_ERR_ARG as for cancel. */
FLT_NODISCARD flt_status_t flt_outbox_answered(flt_outbox_t *ob, uint32_t slot,
                                               flt_outbox_event_t *ev);
/* Retransmission time of BY_ANSWER frames (>= 1 ms, else FLT_ERR_ARG). */
FLT_NODISCARD flt_status_t flt_outbox_set_answer_ms(flt_outbox_t *ob, uint32_t answer_ms);
/* Index of the slot being sent (the oldest queued), or -1 when the outbox is idle. */
int32_t flt_outbox_head(const flt_outbox_t *ob);

#endif /* FLT_PROTO_OUTBOX_H */
