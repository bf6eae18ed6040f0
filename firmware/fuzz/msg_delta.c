/* msg_delta.c - libFuzzer harness of the DELTA decoder (flt_msg_delta_decode, messages.c).
 *
 * Feeds: the whole input as a DELTA payload (its varint head, then the delta payload body).
 * Asserts, beyond memory safety:
 * - the status is one the contract lists (OK, TRUNCATED, FORMAT, RANGE, NONFINITE) and equals
 *   flt_msg_check(FLT_MSG_DELTA, ...);
 * - on success: examples >= 1, loss finite and >= 0, personal metric finite, >= 0 and 0 when
 *   personal_n is 0; the body is the input after a head of FLT_MSG_DELTA_HEADER_MIN..MAX
 *   bytes: empty (a masked round's DELTA) or at least 4 bytes of payload version 3; encoding
 *   the message gives back exactly the input (the head is canonical), also in place from a
 *   body FLT_MSG_DELTA_HEADER_MAX bytes into the output (the device's way), and a buffer one
 *   byte too small gives FLT_ERR_NOMEM.
 */
#include "core/flt_bits.h"
#include "fuzz.h"
#include "proto/messages.h"

static int finite(float x)
{
    return flt_f32_bits_finite(flt_f32_bits(x));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flt_msg_delta_t m;
    flt_status_t s = flt_msg_delta_decode(data, size, &m);
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
                s == FLT_ERR_RANGE || s == FLT_ERR_NONFINITE);
    FUZZ_ASSERT(s == flt_msg_check(FLT_MSG_DELTA, data, size));
    if (s != FLT_OK) {
        return 0;
    }
    FUZZ_ASSERT(m.examples >= 1u && finite(m.loss) && m.loss >= 0.0f);
    FUZZ_ASSERT(finite(m.personal_metric) && m.personal_metric >= 0.0f &&
                (m.personal_n > 0u || m.personal_metric == 0.0f));
    FUZZ_ASSERT(m.body >= data + FLT_MSG_DELTA_HEADER_MIN &&
                m.body <= data + FLT_MSG_DELTA_HEADER_MAX && m.body + m.body_len == data + size);
    /* empty: a masked round's DELTA (TRAIN SECAGG); else a delta payload's header */
    FUZZ_ASSERT(m.body_len == 0u || (m.body_len >= FLT_MSG_DELTA_PAYLOAD_MIN &&
                                     (m.body[0] >> 4) == FLT_MSG_DELTA_PAYLOAD_VERSION));
    uint8_t *out = (uint8_t *)malloc(size);
    size_t len = 0;
    FUZZ_ASSERT(out != NULL);
    FUZZ_ASSERT(flt_msg_delta_encode(&m, out, size, &len) == FLT_OK);
    FUZZ_ASSERT(len == size && memcmp(out, data, size) == 0);
    FUZZ_ASSERT(flt_msg_delta_encode(&m, out, size - 1u, &len) == FLT_ERR_NOMEM);
    free(out);
    /* in place: the body FLT_MSG_DELTA_HEADER_MAX bytes in, moved down behind the head */
    uint8_t *buf = (uint8_t *)malloc(FLT_MSG_DELTA_HEADER_MAX + m.body_len + 1u);
    FUZZ_ASSERT(buf != NULL);
    memcpy(buf + FLT_MSG_DELTA_HEADER_MAX, m.body, m.body_len);
    m.body = buf + FLT_MSG_DELTA_HEADER_MAX;
    FUZZ_ASSERT(flt_msg_delta_encode(&m, buf, FLT_MSG_DELTA_HEADER_MAX + m.body_len, &len) ==
                FLT_OK);
    FUZZ_ASSERT(len == size && memcmp(buf, data, size) == 0);
    free(buf);
    return 0;
}
