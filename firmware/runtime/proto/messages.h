/* messages.h - payload codecs of the protocol messages, version 3 (byte layout:
 * docs/protocol.md "Messages"; host binding: fltiny/native/messages.py; oracle:
 * tests/oracles/messages.py).
 *
 * What it does
 *   flt_msg_<type>_encode writes the payload of one message (before chunking) and
 *   flt_msg_<type>_decode parses and validates one. flt_msg_check(type, ...) validates any
 *   payload (the receiver runs it on every complete message before acknowledging it).
 *   All integers and floats are little-endian; floats are IEEE-754 binary32.
 *
 * Buffers
 *   Caller-owned. Encoders write at most cap bytes and set *out_len. Decoders do not copy
 *   variable-length parts: body / text pointers point into the decoded buffer, which must
 *   outlive the struct. STATUS, LOG and ERROR text is not NUL-terminated (text_len bytes).
 *
 * Failures (never a read or write outside the given sizes; first failure wins, fields checked
 * in wire order)
 *   FLT_ERR_ARG          NULL pointers (decoders also: type is not the decoder's)
 *   FLT_ERR_NOMEM        encode: cap too small
 *   FLT_ERR_TRUNCATED    payload shorter than the fixed part, a DELTA head whose varints or
 *                        floats run past the end (or a delta body, of a GLOBAL or a
 *                        non-empty one of a DELTA, below FLT_MSG_DELTA_PAYLOAD_MIN)
 *   FLT_ERR_FORMAT       bytes after a fixed-size payload; reserved bytes nonzero (GLOBAL,
 *                        DISABLE); bad board
 *                        name (empty, non-printable, data after its NUL padding); text byte
 *                        outside 0x20..0x7E, TAB, LF; full GLOBAL with base_version != 0 or
 *                        a body not a multiple of 4 bytes or empty; a delta body whose
 *                        first byte's top nibble is not the payload version 3 (a version-2
 *                        "FD" payload; an empty DELTA body is valid: a masked round); a
 *                        DELTA head varint longer than needed or above 32 bits
 *   FLT_ERR_UNSUPPORTED  unknown GLOBAL kind or top-k kind
 *   FLT_ERR_NONFINITE    a float field (or a full GLOBAL parameter) is inf or NaN
 *   FLT_ERR_RANGE        field out of range (see each struct; DISABLE: disabled not 0 or 1)
 *   FLT_ERR_OVERSIZE     text longer than FLT_PROTO_MAX_TEXT
 *   Encoders check the same rules and return the same codes, so they never emit a payload
 *   that the decoder would reject.
 */
#ifndef FLT_PROTO_MESSAGES_H
#define FLT_PROTO_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "frame.h"

#define FLT_MSG_NAME_SIZE 16u
#define FLT_MSG_HASH_SIZE 8u
#define FLT_PROTO_MAX_TEXT 128u

#define FLT_MSG_HELLO_SIZE 48u
#define FLT_MSG_GLOBAL_HEADER_SIZE 12u
#define FLT_MSG_TRAIN_SIZE 36u     /* without LOCAL_DP */
#define FLT_MSG_TRAIN_LDP_SIZE 44u /* with LOCAL_DP: ldp_clip f32, ldp_noise f32 appended */
#define FLT_MSG_TRAIN_MAX_SIZE FLT_MSG_TRAIN_LDP_SIZE
/* DELTA head: 3 varints, f32, varint, f32 when personal_n > 0 (8 bytes at least) */
#define FLT_MSG_DELTA_HEADER_MIN 8u
#define FLT_MSG_DELTA_HEADER_MAX 28u
#define FLT_MSG_ACK_SIZE 5u
#define FLT_MSG_DISABLE_SIZE 4u
#define FLT_MSG_DELTA_PAYLOAD_MIN 4u     /* smallest header of a delta payload (docs/protocol.md) */
#define FLT_MSG_DELTA_PAYLOAD_VERSION 3u /* the top nibble of its first byte */

/* capability flags of HELLO (unknown bits are allowed and ignored) */
#define FLT_CAP_TRAIN_HEAD 0x01u   /* trains the float head on device */
#define FLT_CAP_DELTA_BLOCK 0x02u  /* block-wise quantized deltas */
#define FLT_CAP_GLOBAL_DELTA 0x04u /* accepts GLOBAL as a delta from its current version */
#define FLT_CAP_SECAGG 0x08u       /* secure aggregation built in (TRAIN SECAGG, SECAGG messages) */

typedef struct {
    char name[FLT_MSG_NAME_SIZE + 1u]; /* 1..16 printable ASCII, NUL-terminated */
    uint32_t capabilities;             /* FLT_CAP_* */
    uint32_t firmware_version;
    uint8_t model_hash[FLT_MSG_HASH_SIZE]; /* first 8 bytes of sha256(model) */
    uint32_t model_version;
    uint32_t head_params; /* number of trainable head parameters */
    uint32_t free_ram;    /* bytes */
    uint32_t host_seq;    /* last sequence number its receiver accepted from a host (0: none) */
} flt_msg_hello_t;

typedef enum { FLT_GLOBAL_FULL = 0, FLT_GLOBAL_DELTA = 1 } flt_global_kind_t;

typedef struct {
    uint32_t model_version;
    uint32_t base_version; /* FULL: 0; DELTA: < model_version */
    uint8_t kind;          /* flt_global_kind_t */
    const uint8_t *body;   /* FULL: float32 LE parameters; DELTA: delta payload bytes */
    size_t body_len;
} flt_msg_global_t;

typedef enum { FLT_TOPK_COUNT = 0, FLT_TOPK_FRACTION = 1 } flt_topk_kind_t;

typedef struct {
    uint32_t round;
    uint8_t epochs;      /* >= 1 */
    uint8_t topk_kind;   /* flt_topk_kind_t */
    uint16_t batch_size; /* >= 1 */
    float learning_rate; /* finite, > 0 */
    float momentum;      /* finite, 0 <= m < 1 */
    float prox_mu;       /* finite, >= 0 */
    float clip;          /* finite, >= 0 (0: no clipping) */
    uint32_t topk_count; /* COUNT: >= 1 */
    float topk_fraction; /* FRACTION: finite, 0 < f <= 1 */
    uint32_t seed;
    uint32_t flags;  /* FLT_TRAIN_* bits; unknown bits -> FLT_ERR_UNSUPPORTED */
    float ldp_clip;  /* LOCAL_DP: finite, > 0, the L2 bound of the round update; else 0 */
    float ldp_noise; /* LOCAL_DP: finite, > 0, the noise multiplier (std = noise * clip); else 0 */
} flt_msg_train_t;

/* TRAIN flags */
#define FLT_TRAIN_DRIFT 0x01u       /* drift control (FedDyn): use and update the device's state */
#define FLT_TRAIN_PERSONAL 0x02u    /* serve the local model of the last round (personalization) */
#define FLT_TRAIN_NO_FEEDBACK 0x04u /* no error feedback: send top-k of this round's delta only */
/* start this round from a fresh round state: zero residual and drift, the global model served
 * (the host could not replay the device's last round: their states differ) */
#define FLT_TRAIN_RESET 0x10u
/* with PERSONAL: hold the last quarter of the training windows out of training and serve,
 * after this round, whichever of the local and the global model scores better on them */
#define FLT_TRAIN_SELECT 0x20u
/* local differential privacy (privacy/local_dp.h): the device clips its round update to L2
 * norm ldp_clip and adds Gaussian noise of standard deviation ldp_noise * ldp_clip from a secret
 * only it holds, before error feedback and top-k; the TRAIN is then FLT_MSG_TRAIN_LDP_SIZE bytes */
#define FLT_TRAIN_LOCAL_DP 0x40u
/* secure aggregation: the device keeps this round's delta (trained minus held parameters; the
 * host also sets NO_FEEDBACK) for the round's MASKED message and sends a DELTA with an empty
 * body (examples, loss and personal metric still travel; docs/protocol.md "Secure aggregation
 * on the device link"); not with LOCAL_DP (the device answers ERROR RANGE) */
#define FLT_TRAIN_SECAGG 0x80u
/* bits 8-11: the width of the DELTA's values, 2..8 bits (0: 8); other widths -> RANGE */
#define FLT_TRAIN_BITS_SHIFT 8u
#define FLT_TRAIN_BITS_MASK 0xf00u
/* bits 16-23: the self-check drop in hundredths of the personal metric, 0..100 (0: no
 * self-check; above 100 -> RANGE): the first TRAIN after a GLOBAL applied compares the new
 * global model with the factory head on the device's personal test split and, when it is
 * worse by more than the drop, the device reverts to the factory model (flt_round.h
 * flt_round_self_check, firmware/app/flt_device.h) */
#define FLT_TRAIN_CHECK_SHIFT 16u
#define FLT_TRAIN_CHECK_MASK 0xff0000u
#define FLT_TRAIN_CHECK_MAX 100u
#define FLT_TRAIN_FLAGS_KNOWN                                                         \
    (FLT_TRAIN_DRIFT | FLT_TRAIN_PERSONAL | FLT_TRAIN_NO_FEEDBACK | FLT_TRAIN_RESET | \
     FLT_TRAIN_SELECT | FLT_TRAIN_LOCAL_DP | FLT_TRAIN_SECAGG | FLT_TRAIN_BITS_MASK | \
     FLT_TRAIN_CHECK_MASK)

typedef struct {
    uint32_t round;
    uint32_t base_version; /* model version the delta is computed against */
    uint32_t examples;     /* >= 1 */
    float loss;            /* finite, >= 0 */
    uint32_t personal_n;   /* windows of the personal test split evaluated (0: none) */
    float personal_metric; /* finite, >= 0: accuracy in [0, 1] (classification) or MAE of the
                            * served model on them, before local training; 0 when n == 0
                            * (then not on the wire: the head has no metric field) */
    const uint8_t *body;   /* delta payload bytes (docs/protocol.md); empty (body_len 0): the
                            * round's update is masked (TRAIN SECAGG) and travels in SECAGG.
                            * encode: may lie inside out at or after out +
                            * FLT_MSG_DELTA_HEADER_MAX (moved down behind the head) */
    size_t body_len;
} flt_msg_delta_t;

/* ACK: code 0 accepted, 1 duplicate (already had it). NACK: code = the flt_status_t value of
 * the rejection (nonzero). acked_seq >= 1. */
#define FLT_ACK_ACCEPTED 0u
#define FLT_ACK_DUPLICATE 1u
typedef struct {
    uint32_t acked_seq;
    uint8_t code;
} flt_msg_ack_t;

/* DISABLE (host -> device, FLT_MSG_DISABLE_SIZE bytes: disabled u8, 3 reserved zero bytes):
 * disabled 1 stops on-device training (the device answers TRAIN with an ERROR) and makes the
 * device serve its factory model (head_init.h) until a DISABLE with disabled 0 (ENABLE)
 * arrives; it keeps the last GLOBAL it applied, so an enabled device rejoins from it.
 * disabled other than 0 or 1 -> FLT_ERR_RANGE; a reserved byte set -> FLT_ERR_FORMAT. */
typedef struct {
    uint8_t disabled; /* 1: DISABLE, 0: ENABLE */
} flt_msg_disable_t;

/* SECAGG (both ways): kind u8, then the secure-aggregation payload of that kind
 * (firmware/runtime/secagg/msg.h), at least FLT_MSG_SECAGG_MIN bytes in all. The codec here
 * checks the kind (flt_msg_secagg_check, which the link runs before its ACK); the body
 * is validated by the secagg decoder of its kind where it is used (the device's secure
 * aggregation, the host binding), which answers a bad one with an ERROR. */
#define FLT_SECAGG_KIND_BEGIN 1u     /* host -> device */
#define FLT_SECAGG_KIND_ADVERTISE 2u /* device -> host */
#define FLT_SECAGG_KIND_COHORT 3u    /* host -> device */
#define FLT_SECAGG_KIND_SHARES 4u    /* both: dealt boxes (device), relayed boxes (host) */
#define FLT_SECAGG_KIND_MASKED 5u    /* device -> host */
#define FLT_SECAGG_KIND_UNMASK 6u    /* host -> device */
#define FLT_SECAGG_KIND_REVEAL 7u    /* device -> host */
#define FLT_SECAGG_KIND_MAX 7u
#define FLT_MSG_SECAGG_MIN 2u /* the kind and at least one byte of body */

/* STATUS and LOG: text only (code unused, 0). ERROR: code + text. */
typedef struct {
    uint16_t code;
    const char *text;
    size_t text_len; /* <= FLT_PROTO_MAX_TEXT */
} flt_msg_text_t;

FLT_NODISCARD flt_status_t flt_msg_hello_encode(const flt_msg_hello_t *m, uint8_t *out, size_t cap,
                                                size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_hello_decode(const uint8_t *buf, size_t len, flt_msg_hello_t *m);
FLT_NODISCARD flt_status_t flt_msg_global_encode(const flt_msg_global_t *m, uint8_t *out,
                                                 size_t cap, size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_global_decode(const uint8_t *buf, size_t len,
                                                 flt_msg_global_t *m);
/* i-th parameter of a FULL global (i < body_len / 4; no check). */
float flt_msg_global_param(const flt_msg_global_t *m, size_t i);
FLT_NODISCARD flt_status_t flt_msg_train_encode(const flt_msg_train_t *m, uint8_t *out, size_t cap,
                                                size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_train_decode(const uint8_t *buf, size_t len, flt_msg_train_t *m);
FLT_NODISCARD flt_status_t flt_msg_delta_encode(const flt_msg_delta_t *m, uint8_t *out, size_t cap,
                                                size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_delta_decode(const uint8_t *buf, size_t len, flt_msg_delta_t *m);
/* type: FLT_MSG_ACK or FLT_MSG_NACK */
FLT_NODISCARD flt_status_t flt_msg_ack_encode(uint8_t type, const flt_msg_ack_t *m, uint8_t *out,
                                              size_t cap, size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_ack_decode(uint8_t type, const uint8_t *buf, size_t len,
                                              flt_msg_ack_t *m);
FLT_NODISCARD flt_status_t flt_msg_disable_encode(const flt_msg_disable_t *m, uint8_t *out,
                                                  size_t cap, size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_disable_decode(const uint8_t *buf, size_t len,
                                                  flt_msg_disable_t *m);
/* type: FLT_MSG_STATUS, FLT_MSG_LOG or FLT_MSG_ERROR */
FLT_NODISCARD flt_status_t flt_msg_text_encode(uint8_t type, const flt_msg_text_t *m, uint8_t *out,
                                               size_t cap, size_t *out_len);
FLT_NODISCARD flt_status_t flt_msg_text_decode(uint8_t type, const uint8_t *buf, size_t len,
                                               flt_msg_text_t *m);

/* SECAGG: FLT_ERR_TRUNCATED below FLT_MSG_SECAGG_MIN bytes, FLT_ERR_UNSUPPORTED for a kind
 * outside 1..FLT_SECAGG_KIND_MAX. (The direction of a kind is checked by its receiver.) */
FLT_NODISCARD flt_status_t flt_msg_secagg_check(const uint8_t *buf, size_t len);

/* Validates a complete payload of the given type (FLT_ERR_UNSUPPORTED for an unknown type). */
FLT_NODISCARD flt_status_t flt_msg_check(uint8_t type, const uint8_t *buf, size_t len);

#endif /* FLT_PROTO_MESSAGES_H */
