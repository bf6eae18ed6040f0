/* frame.h - the wire frame of the device<->host protocol, version 3
 * (byte layout: docs/protocol.md "Frames"; host binding: fltiny/native/proto.py; oracle:
 * tests/oracles/protocol.py).
 *
 * What it does
 *   A frame is  COBS( header(3..17) | payload(payload_len) | tag(8) ) 0x00
 *   header = byte 0: bits 7-6 the version (3), bit 5 FROM_HOST, bit 4 CHUNKED, bits 3-0 the
 *            message type; then LEB128 varints (minimal, at most 32 bits): device_id, seq,
 *            and only with CHUNKED (messages of more than one frame) chunk_index, chunk_count.
 *   tag    = first 8 bytes of HMAC-SHA256(key, header | payload), key = the device's 32 bytes.
 *   There is no length field (the frame's length gives payload_len) and no CRC: the tag
 *   covers integrity and authenticity (a corrupted or forged frame passes with probability
 *   2^-64 per attempt; docs/protocol.md "Security").
 *   flt_proto_frame_encode writes one complete wire frame (with the trailing delimiter);
 *   flt_proto_frame_decode checks one COBS-decoded frame (delimiter removed).
 *
 * Buffers
 *   Caller-owned. Encode reads payload[0..h->payload_len-1] and writes at most cap bytes
 *   (FLT_PROTO_WIRE_SIZE(payload_len) always suffices). Decode does not copy: *payload points
 *   into frame. key is FLT_PROTO_KEY_SIZE bytes.
 *
 * Failures (never a read or write outside the given sizes)
 *   Encode: FLT_ERR_ARG for NULL pointers or a header that decode would reject (version,
 *   type, flags, chunk fields, payload_len > FLT_PROTO_MAX_CHUNK); FLT_ERR_NOMEM if cap is
 *   too small (out unspecified).
 *   Decode, in this order (first failure wins):
 *     FLT_ERR_TRUNCATED    len < FLT_PROTO_OVERHEAD_MIN
 *     FLT_ERR_UNSUPPORTED  version bits != 3 (a version-2 frame's bits say 2, a version-1 frame
 *                          starts with 0x01: refused before authentication, so the reason is
 *                          visible; no state changes)
 *     FLT_ERR_AUTH         tag mismatch (wrong key, forged or corrupted frame)
 *     FLT_ERR_UNSUPPORTED  unknown message type
 *     FLT_ERR_TRUNCATED    the header's varints run into the tag
 *     FLT_ERR_FORMAT       a varint longer than needed or above 32 bits; CHUNKED with
 *                          chunk_count < 2 or chunk_index >= chunk_count, or chunk_count
 *                          above 65535
 *     FLT_ERR_OVERSIZE     payload_len > FLT_PROTO_MAX_CHUNK
 *     FLT_ERR_ARG          NULL arguments
 *   On failure *h and *payload are unspecified.
 */
#ifndef FLT_PROTO_FRAME_H
#define FLT_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_bytes.h"
#include "cobs.h"
#include "core/flt_status.h"

#define FLT_PROTO_VERSION 3u
#define FLT_PROTO_HEADER_MIN 3u  /* type byte, 1-byte device id, 1-byte seq */
#define FLT_PROTO_HEADER_MAX 17u /* 1 + 5 + 5 + 3 + 3 */
#define FLT_PROTO_TAG_SIZE 8u
#define FLT_PROTO_KEY_SIZE 32u
/* bytes a frame adds to its payload before COBS: header + tag (smallest, worst case) */
#define FLT_PROTO_OVERHEAD_MIN (FLT_PROTO_HEADER_MIN + FLT_PROTO_TAG_SIZE)
#define FLT_PROTO_OVERHEAD (FLT_PROTO_HEADER_MAX + FLT_PROTO_TAG_SIZE)

/* Largest payload of one frame (one chunk). A build may lower or raise it (<= 65535); both
 * ends must agree or the receiver rejects larger chunks with FLT_ERR_OVERSIZE. */
#ifndef FLT_PROTO_MAX_CHUNK
#define FLT_PROTO_MAX_CHUNK 256u
#endif
#if FLT_PROTO_MAX_CHUNK < 1 || FLT_PROTO_MAX_CHUNK > 65535
#error "FLT_PROTO_MAX_CHUNK must be in 1..65535"
#endif

/* Largest COBS-decoded size of a frame with n payload bytes, and its largest size on the wire
 * (COBS worst case + the 0x00 delimiter); flt_proto_frame_size gives a header's exact size. */
#define FLT_PROTO_FRAME_SIZE(n) (FLT_PROTO_OVERHEAD + (n))
#define FLT_PROTO_WIRE_SIZE(n) (FLT_COBS_MAX_ENCODED(FLT_PROTO_FRAME_SIZE(n)) + 1u)
#define FLT_PROTO_MAX_FRAME FLT_PROTO_FRAME_SIZE(FLT_PROTO_MAX_CHUNK)
#define FLT_PROTO_MAX_WIRE FLT_PROTO_WIRE_SIZE(FLT_PROTO_MAX_CHUNK)

/* header flags (flt_proto_header_t.flags; bit 5 of the header's first byte) */
#define FLT_PROTO_FLAG_FROM_HOST 0x01u /* set on every frame the host sends */
#define FLT_PROTO_FLAGS_KNOWN 0x01u

typedef enum {
    FLT_MSG_HELLO = 1,
    FLT_MSG_GLOBAL = 2,
    FLT_MSG_TRAIN = 3,
    FLT_MSG_DELTA = 4,
    FLT_MSG_ACK = 5,
    FLT_MSG_NACK = 6,
    FLT_MSG_STATUS = 7,
    FLT_MSG_LOG = 8,
    FLT_MSG_ERROR = 9,
    FLT_MSG_DISABLE = 10, /* host -> device: stop or resume training (messages.h) */
    /* both ways: one secure-aggregation message, its kind in the first payload byte
     * (messages.h FLT_SECAGG_KIND_*; the body is a secagg/msg.h payload) */
    FLT_MSG_SECAGG = 11
} flt_msg_type_t;
/* the header's type field has 4 bits: 12..15 are the last free types */
#define FLT_MSG_TYPE_MAX 11u

typedef struct {
    uint8_t version; /* FLT_PROTO_VERSION */
    uint8_t type;    /* flt_msg_type_t */
    uint8_t flags;   /* FLT_PROTO_FLAG_* */
    uint32_t device_id;
    uint32_t seq; /* 0 on ACK/NACK; >= 1 and increasing per sender otherwise */
    uint16_t chunk_index;
    uint16_t chunk_count;
    uint16_t payload_len;
} flt_proto_header_t;

/* COBS-decoded bytes of a frame with this header (header + payload + tag); 0 for a header
 * that flt_proto_frame_encode would refuse. */
size_t flt_proto_frame_size(const flt_proto_header_t *h);

/* 1 for ACK and NACK (control frames: not acknowledged, not replay-checked by seq). */
int flt_msg_is_control(uint8_t type);

FLT_NODISCARD flt_status_t flt_proto_frame_encode(const flt_proto_header_t *h,
                                                  const uint8_t *payload,
                                                  const uint8_t key[FLT_PROTO_KEY_SIZE],
                                                  uint8_t *out, size_t cap, size_t *out_len);

FLT_NODISCARD flt_status_t flt_proto_frame_decode(const uint8_t *frame, size_t len,
                                                  const uint8_t key[FLT_PROTO_KEY_SIZE],
                                                  flt_proto_header_t *h, const uint8_t **payload);

#endif /* FLT_PROTO_FRAME_H */
