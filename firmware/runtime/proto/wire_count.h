/* wire_count.h - the bytes one message takes on a lossless link (the simulator's wire figures).
 *
 * What it does
 *   flt_wire_count frames one message exactly as a sender sends it when nothing is lost: it
 *   begins the message on `tx` (flt_proto_tx_begin, so tx's sequence numbers advance as the
 *   sending side's do and the frames' varints grow with them), encodes every chunk with
 *   flt_proto_tx_chunk and, when flt_proto_ack_mode says the receiver acknowledges each
 *   frame of this message (FLT_PROTO_ACK_EACH; an answered message gets none), the ACK
 *   (FLT_ACK_ACCEPTED) it returns for each chunk, encoded by the receiving side's sender
 *   `peer` with flt_proto_tx_reply. It adds the chunks' wire bytes (COBS and the 0x00 delimiter
 *   included) to *frame_bytes and the ACKs' to *ack_bytes. Nothing is sent.
 *   Host only (fltiny/native/proto.py WireCount, one call per message); a device never calls
 *   it and its linker drops it (--gc-sections).
 *
 * Buffers: msg[0 .. len-1] is the encoded message (messages.h), read only; one frame of
 *   FLT_PROTO_MAX_WIRE bytes on the stack; no allocation.
 *
 * Failures: FLT_ERR_ARG (NULL pointers, msg NULL with len > 0, a control type) and those of
 *   flt_proto_tx_begin, flt_proto_tx_chunk and flt_proto_tx_reply. On failure the counters
 *   are unchanged; tx's next_seq has advanced if the message was begun.
 */
#ifndef FLT_PROTO_WIRE_COUNT_H
#define FLT_PROTO_WIRE_COUNT_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "link.h"

FLT_NODISCARD flt_status_t flt_wire_count(flt_proto_tx_t *tx, const flt_proto_tx_t *peer,
                                          uint8_t type, const uint8_t *msg, size_t len,
                                          uint64_t *frame_bytes, uint64_t *ack_bytes);

#endif /* FLT_PROTO_WIRE_COUNT_H */
