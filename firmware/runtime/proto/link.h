/* link.h - the reliability layer of the protocol on the device side (semantics:
 * docs/protocol.md "Reliability"; host binding: fltiny/native/proto.py).
 *
 * Receiver (flt_proto_rx_t)
 *   flt_proto_rx_feed takes the wire one byte at a time. Per byte it does O(1) work (COBS
 *   decoding into the frame buffer), so it can run in a UART ISR; the byte that ends a frame
 *   (0x00) runs the frame checks (CRC-32, then HMAC: about one SHA-256 of the frame), so on a
 *   slow core feed it from a ring buffer in the main loop instead. A complete frame is checked
 *   in this order: COBS and buffer size, flt_proto_frame_decode (CRC, HMAC, header), device id
 *   and direction, then for data frames the sequence number (replay / duplicate), the chunk
 *   order and the reassembly size, and for the last chunk flt_msg_check on the whole message.
 *   Every outcome is reported in *ev, including what to answer (ev->reply: ACK, NACK or
 *   nothing); build the answer with flt_proto_tx_reply and send it. An accepted frame is
 *   ACKed unless flt_proto_ack_mode says its message is confirmed otherwise (the host's
 *   TRAIN and small GLOBALs, docs/protocol.md "Answered messages"): then ev->reply is 0.
 *
 * Buffers
 *   frame[frame_cap] (COBS-decoded frame, FLT_PROTO_MAX_FRAME is enough for full chunks) and
 *   msg[msg_cap] (the reassembled message) are caller-owned and must outlive rx; key is
 *   FLT_PROTO_KEY_SIZE bytes, referenced, not copied. After a MESSAGE event msg[0..msg_len-1]
 *   holds the message; it stays valid until a later feed reports an event other than NONE.
 *
 * Return values of flt_proto_rx_feed (ev->event in brackets)
 *   FLT_OK               no frame ended [NONE], or a frame was accepted [CHUNK, MESSAGE,
 *                        CONTROL]
 *   FLT_ERR_OVERSIZE     frame longer than frame_cap [REJECTED, no reply]
 *   FLT_ERR_FORMAT / _TRUNCATED / _CHECKSUM / _AUTH / _UNSUPPORTED / _OVERSIZE
 *                        from COBS or flt_proto_frame_decode [REJECTED, no reply: the header of
 *                        an unauthenticated frame is not trusted]; FLT_ERR_AUTH also for a
 *                        frame with another device id or the wrong direction flag
 *   FLT_ERR_REPLAY       seq < last accepted seq [REJECTED, reply NACK], or seq 0 [REJECTED,
 *                        no reply: an ACK/NACK names a seq >= 1, so none can answer it]
 *   FLT_ERR_DUPLICATE    seq == last accepted seq: a retransmission whose ACK was lost
 *                        [REJECTED, reply ACK with code FLT_ACK_DUPLICATE; not delivered again]
 *   FLT_ERR_ORDER        chunk out of order or a chunk missing, or a TRAIN from the host
 *                        whose seq is not last accepted seq + 1 (a host frame before it was
 *                        lost: the GLOBAL it trains from may be missing) [REJECTED, reply NACK]
 *   FLT_ERR_NOMEM        message larger than msg_cap [REJECTED, reply NACK]
 *   any flt_msg_check status for a complete message that does not validate [REJECTED, NACK]
 *   control frames (ACK/NACK) that do not validate [REJECTED, no reply]
 *   FLT_ERR_ARG          NULL arguments (rx unchanged)
 *   After any return the receiver is ready for the next byte; a rejected chunk abandons the
 *   message being reassembled.
 *
 * Sender (flt_proto_tx_t)
 *   flt_proto_tx_begin reserves consecutive sequence numbers for the chunks of one message
 *   (ceil(len / tx->chunk), at least 1; tx->chunk is FLT_PROTO_MAX_CHUNK unless lowered with
 *   flt_proto_tx_set_chunk); flt_proto_tx_chunk encodes chunk i as a
 *   wire frame (call again with the same arguments to retransmit it: same bytes, same seq).
 *   Send chunk i + 1 only after chunk i is acknowledged (stop-and-wait).
 *   Failures: FLT_ERR_ARG (NULL, a control type to tx_begin, index out of range, a message
 *   needing more than 65535 chunks), FLT_ERR_STATE (sequence numbers exhausted),
 *   FLT_ERR_NOMEM (cap too small; FLT_PROTO_MAX_WIRE always suffices).
 */
#ifndef FLT_PROTO_LINK_H
#define FLT_PROTO_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "frame.h"
#include "messages.h"

/* How the receiver confirms an accepted data frame (docs/protocol.md "Answered messages"):
 *   EACH       an ACK per frame (every message but the two below);
 *   BY_NEXT    no ACK: a host GLOBAL of at most FLT_PROTO_ANSWERED_CHUNKS frames, sent as a
 *              burst and confirmed by the answer to the TRAIN that follows it (a TRAIN after
 *              a lost frame is refused: FLT_ERR_ORDER above);
 *   BY_ANSWER  no ACK: a host TRAIN, confirmed by the device's DELTA or ERROR answering it; its
 *              retransmission (a duplicate once it arrived) is ACKed with code 1.
 * Duplicates are ACKed and rejections NACKed in every mode. flt_proto_ack_mode(type,
 * chunk_count, flags of the frame) gives the mode (0 EACH for control types). */
#define FLT_PROTO_ANSWERED_CHUNKS 4u
typedef enum {
    FLT_PROTO_ACK_EACH = 0,
    FLT_PROTO_ACK_BY_NEXT = 1,
    FLT_PROTO_ACK_BY_ANSWER = 2
} flt_proto_ack_mode_t;
int flt_proto_ack_mode(uint8_t type, uint16_t chunk_count, uint8_t flags);

typedef enum {
    FLT_PROTO_EV_NONE = 0,    /* no frame ended */
    FLT_PROTO_EV_CHUNK = 1,   /* a chunk was accepted; the message is not complete yet */
    FLT_PROTO_EV_MESSAGE = 2, /* a complete, validated message is in rx->msg */
    FLT_PROTO_EV_CONTROL = 3, /* an ACK or NACK from the peer (ev->header.type, ev->ack) */
    FLT_PROTO_EV_REJECTED = 4 /* a frame was rejected (the return status says why) */
} flt_proto_event_kind_t;

typedef struct {
    uint8_t event;             /* flt_proto_event_kind_t */
    flt_proto_header_t header; /* valid for CHUNK, MESSAGE, CONTROL and authenticated rejects */
    size_t msg_len;            /* MESSAGE: bytes in rx->msg */
    flt_msg_ack_t ack;         /* CONTROL: the peer's ACK/NACK payload */
    uint8_t reply;             /* 0, FLT_MSG_ACK or FLT_MSG_NACK: what to send back */
    uint8_t reply_code;        /* ACK: FLT_ACK_*; NACK: the flt_status_t of the rejection */
    uint32_t reply_seq;        /* sequence number to acknowledge */
} flt_proto_rx_event_t;

typedef struct {
    /* configuration */
    const uint8_t *key;
    uint32_t device_id;
    uint8_t expect_flags; /* FLT_PROTO_FLAG_FROM_HOST on a device, 0 on a host */
    uint8_t *frame;
    size_t frame_cap;
    uint8_t *msg;
    size_t msg_cap;
    /* byte state */
    size_t frame_len;
    uint8_t cobs_remaining; /* data bytes left in the current COBS block */
    uint8_t cobs_code;      /* code byte of the current block, 0 before the first */
    uint8_t overflow;
    uint8_t nonempty;
    /* message state */
    uint32_t last_seq; /* last accepted data seq from the peer (0: none yet) */
    uint8_t asm_active;
    uint8_t asm_type;
    uint16_t asm_next;
    uint16_t asm_count;
    size_t msg_len;
} flt_proto_rx_t;

/* on_host: 1 when this receiver runs on the host (it accepts frames from the device only). */
FLT_NODISCARD flt_status_t flt_proto_rx_init(flt_proto_rx_t *rx, const uint8_t *key,
                                             uint32_t device_id, int on_host, uint8_t *frame,
                                             size_t frame_cap, uint8_t *msg, size_t msg_cap);
FLT_NODISCARD flt_status_t flt_proto_rx_feed(flt_proto_rx_t *rx, uint8_t byte,
                                             flt_proto_rx_event_t *ev);
/* A receiver that carries on a peer's sequence from last_seq (a restarted host's, from its
 * checkpoint: frames the peer sent before stay refused as replays). Only before the first
 * byte is fed; never lowers last_seq. FLT_ERR_ARG for NULL. */
FLT_NODISCARD flt_status_t flt_proto_rx_resume_after(flt_proto_rx_t *rx, uint32_t last_seq);
/* Feeds data[0..len-1] up to and including the first byte whose event is not NONE (*used:
 * bytes consumed, len when no frame ended); returns that byte's status. Same as calling
 * flt_proto_rx_feed per byte (a buffered UART or the host feed whole reads). */
FLT_NODISCARD flt_status_t flt_proto_rx_feed_bytes(flt_proto_rx_t *rx, const uint8_t *data,
                                                   size_t len, size_t *used,
                                                   flt_proto_rx_event_t *ev);

typedef struct {
    const uint8_t *key;
    uint32_t device_id;
    uint8_t flags;  /* FLT_PROTO_FLAG_FROM_HOST when sending from the host */
    uint16_t chunk; /* payload bytes per chunk sent (FLT_PROTO_MAX_CHUNK unless lowered) */
    uint32_t next_seq;
} flt_proto_tx_t;

typedef struct {
    uint8_t type;
    size_t len;
    uint32_t first_seq;
    uint16_t chunk_count;
    uint16_t chunk; /* tx->chunk when the message was begun (retransmissions keep it) */
} flt_proto_outgoing_t;

/* next_seq starts at first_seq (>= 1; 1 after a fresh provisioning); chunk is
 * FLT_PROTO_MAX_CHUNK. */
FLT_NODISCARD flt_status_t flt_proto_tx_init(flt_proto_tx_t *tx, const uint8_t *key,
                                             uint32_t device_id, int on_host, uint32_t first_seq);
/* Smaller chunks for messages begun from now on (a noisy line loses fewer long frames);
 * 1 <= chunk <= FLT_PROTO_MAX_CHUNK, else FLT_ERR_ARG. The receiver accepts any size. */
FLT_NODISCARD flt_status_t flt_proto_tx_set_chunk(flt_proto_tx_t *tx, uint16_t chunk);
/* Sequence numbers from next_seq on for messages begun from now on (a peer that already
 * accepted numbers up to next_seq - 1 from an earlier sender: its HELLO's host_seq); never
 * lowers them (a smaller next_seq is a no-op). FLT_ERR_ARG for NULL or next_seq 0. */
FLT_NODISCARD flt_status_t flt_proto_tx_skip_to(flt_proto_tx_t *tx, uint32_t next_seq);
FLT_NODISCARD flt_status_t flt_proto_tx_begin(flt_proto_tx_t *tx, uint8_t type, size_t msg_len,
                                              flt_proto_outgoing_t *o);
FLT_NODISCARD flt_status_t flt_proto_tx_chunk(const flt_proto_tx_t *tx,
                                              const flt_proto_outgoing_t *o, const uint8_t *msg,
                                              uint16_t index, uint8_t *out, size_t cap,
                                              size_t *out_len);
/* ACK/NACK frame (seq 0, one chunk) answering ev; FLT_ERR_ARG when ev->reply is 0. */
FLT_NODISCARD flt_status_t flt_proto_tx_reply(const flt_proto_tx_t *tx,
                                              const flt_proto_rx_event_t *ev, uint8_t *out,
                                              size_t cap, size_t *out_len);

#endif /* FLT_PROTO_LINK_H */
