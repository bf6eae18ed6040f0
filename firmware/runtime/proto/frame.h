/* frame.h - the wire frame of the device<->host protocol, version 1
 * (byte layout: docs/protocol.md; host binding: fltiny/native/proto.py; oracle:
 * tests/oracles/protocol.py).
 *
 * What it does
 *   A frame is  COBS( header(18) | payload(payload_len) | tag(16) | crc32(4) ) 0x00
 *   tag   = first 16 bytes of HMAC-SHA256(key, header | payload), key = the device's 32 bytes
 *   crc32 = IEEE CRC-32 of header | payload | tag, little-endian.
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
 *     FLT_ERR_TRUNCATED    len < FLT_PROTO_OVERHEAD
 *     FLT_ERR_CHECKSUM     CRC-32 mismatch
 *     FLT_ERR_AUTH         HMAC tag mismatch (wrong key or forged frame)
 *     FLT_ERR_UNSUPPORTED  version != 1 or unknown message type
 *     FLT_ERR_FORMAT       reserved flag bits or reserved byte set; chunk_count == 0;
 *                          chunk_index >= chunk_count
 *     FLT_ERR_OVERSIZE     payload_len > FLT_PROTO_MAX_CHUNK
 *     FLT_ERR_TRUNCATED    payload_len larger than the bytes present
 *     FLT_ERR_FORMAT       bytes present beyond payload_len
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

#define FLT_PROTO_VERSION 1u
#define FLT_PROTO_HEADER_SIZE 18u
#define FLT_PROTO_TAG_SIZE 16u
#define FLT_PROTO_CRC_SIZE 4u
#define FLT_PROTO_KEY_SIZE 32u
/* bytes a frame adds to its payload before COBS: header + tag + CRC */
#define FLT_PROTO_OVERHEAD (FLT_PROTO_HEADER_SIZE + FLT_PROTO_TAG_SIZE + FLT_PROTO_CRC_SIZE)

/* Largest payload of one frame (one chunk). A build may lower or raise it (<= 65535); both
 * ends must agree or the receiver rejects larger chunks with FLT_ERR_OVERSIZE. */
#ifndef FLT_PROTO_MAX_CHUNK
#define FLT_PROTO_MAX_CHUNK 256u
#endif
#if FLT_PROTO_MAX_CHUNK < 1 || FLT_PROTO_MAX_CHUNK > 65535
#error "FLT_PROTO_MAX_CHUNK must be in 1..65535"
#endif

/* COBS-decoded size of a frame with n payload bytes, and its size on the wire (COBS worst
 * case + the 0x00 delimiter). */
#define FLT_PROTO_FRAME_SIZE(n) (FLT_PROTO_OVERHEAD + (n))
#define FLT_PROTO_WIRE_SIZE(n) (FLT_COBS_MAX_ENCODED(FLT_PROTO_FRAME_SIZE(n)) + 1u)
#define FLT_PROTO_MAX_FRAME FLT_PROTO_FRAME_SIZE(FLT_PROTO_MAX_CHUNK)
#define FLT_PROTO_MAX_WIRE FLT_PROTO_WIRE_SIZE(FLT_PROTO_MAX_CHUNK)

/* header flags */
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
    FLT_MSG_ERROR = 9
} flt_msg_type_t;
#define FLT_MSG_TYPE_MAX 9u

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
