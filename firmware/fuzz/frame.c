/* frame.c - libFuzzer harness of the frame decoder (firmware/runtime/proto/frame.c).
 *
 * Feeds: byte 0 picks the mode, the rest is a COBS-decoded frame for flt_proto_frame_decode.
 *   mode bit 0 clear: the rest is header + payload and the harness appends the valid tag
 *                     (HMAC-SHA256 with FUZZ_KEY, 8 bytes), so the fuzzer reaches the header
 *                     checks behind authentication;
 *   mode bit 0 set:   the rest is decoded as it is (its last 8 bytes are the tag).
 * Asserts, beyond memory safety:
 * - the status is one the contract lists for decode;
 * - on success: the payload lies inside the frame and ends where the tag starts, the header is
 *   one flt_proto_frame_encode accepts, flt_proto_frame_size(header) is the frame's length,
 *   and encoding the header and payload gives back exactly the frame (COBS-decoded, without
 *   the delimiter): the wire form is canonical;
 * - a frame that decodes with FUZZ_KEY fails with FLT_ERR_AUTH under any other key.
 */
#include "fuzz.h"
#include "proto/frame.h"
#include "proto/hmac.h"

static const uint8_t key[FLT_PROTO_KEY_SIZE] = FUZZ_KEY;

static int decode_status_ok(flt_status_t s)
{
    return s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_AUTH ||
           s == FLT_ERR_FORMAT || s == FLT_ERR_OVERSIZE;
}

static void check_frame(const uint8_t *frame, size_t len)
{
    flt_proto_header_t h;
    const uint8_t *payload = NULL;
    flt_status_t s = flt_proto_frame_decode(frame, len, key, &h, &payload);
    FUZZ_ASSERT(decode_status_ok(s));
    if (s != FLT_OK) {
        return;
    }
    FUZZ_ASSERT(payload >= frame + FLT_PROTO_HEADER_MIN &&
                payload + h.payload_len == frame + len - FLT_PROTO_TAG_SIZE);
    FUZZ_ASSERT(flt_proto_frame_size(&h) == len);

    size_t cap = FLT_PROTO_WIRE_SIZE(h.payload_len);
    uint8_t *wire = (uint8_t *)malloc(cap);
    uint8_t *back = (uint8_t *)malloc(len);
    size_t wlen = 0, blen = 0;
    FUZZ_ASSERT(wire != NULL && back != NULL);
    FUZZ_ASSERT(flt_proto_frame_encode(&h, payload, key, wire, cap, &wlen) == FLT_OK);
    FUZZ_ASSERT(wlen >= 2u && wire[wlen - 1u] == 0u && memchr(wire, 0, wlen - 1u) == NULL);
    FUZZ_ASSERT(flt_cobs_decode(wire, wlen - 1u, back, len, &blen) == FLT_OK);
    FUZZ_ASSERT(blen == len && memcmp(back, frame, len) == 0);
    free(wire);
    free(back);

    uint8_t other[FLT_PROTO_KEY_SIZE];
    memcpy(other, key, sizeof other);
    other[frame[0] % FLT_PROTO_KEY_SIZE] ^= 0x80u;
    FUZZ_ASSERT(flt_proto_frame_decode(frame, len, other, &h, &payload) == FLT_ERR_AUTH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    const uint8_t *body = data + 1;
    size_t n = size - 1u;
    if ((data[0] & 1u) != 0u) {
        uint8_t *frame = fuzz_dup(body, n);
        check_frame(frame, n);
        free(frame);
        return 0;
    }
    uint8_t mac[FLT_SHA256_DIGEST_SIZE];
    uint8_t *frame = (uint8_t *)malloc(n + FLT_PROTO_TAG_SIZE);
    FUZZ_ASSERT(frame != NULL);
    if (n > 0u) {
        memcpy(frame, body, n);
    }
    flt_hmac_sha256(key, sizeof key, frame, n, mac);
    memcpy(frame + n, mac, FLT_PROTO_TAG_SIZE);
    check_frame(frame, n + FLT_PROTO_TAG_SIZE);
    free(frame);
    return 0;
}
