/* msg_global.c - libFuzzer harness of the GLOBAL decoder (flt_msg_global_decode, messages.c).
 *
 * Feeds: the whole input as a GLOBAL payload (FULL parameters or a DELTA body).
 * Asserts, beyond memory safety:
 * - the status is one the contract lists (OK, TRUNCATED, FORMAT, UNSUPPORTED, RANGE,
 *   NONFINITE) and equals flt_msg_check(FLT_MSG_GLOBAL, ...);
 * - on success: the body is the input after the 12-byte header; FULL: base_version 0, a
 *   non-empty multiple of 4 bytes, every parameter (flt_msg_global_param) finite; DELTA:
 *   base_version < model_version and a body of payload version 3 (first nibble); encoding the
 *   message gives back exactly the input, and a buffer one byte too small gives FLT_ERR_NOMEM.
 */
#include "core/flt_bits.h"
#include "fuzz.h"
#include "proto/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flt_msg_global_t m;
    flt_status_t s = flt_msg_global_decode(data, size, &m);
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
                s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_RANGE || s == FLT_ERR_NONFINITE);
    FUZZ_ASSERT(s == flt_msg_check(FLT_MSG_GLOBAL, data, size));
    if (s != FLT_OK) {
        return 0;
    }
    FUZZ_ASSERT(m.body == data + FLT_MSG_GLOBAL_HEADER_SIZE &&
                m.body_len == size - FLT_MSG_GLOBAL_HEADER_SIZE);
    if (m.kind == FLT_GLOBAL_FULL) {
        FUZZ_ASSERT(m.base_version == 0u && m.body_len > 0u && m.body_len % 4u == 0u);
        for (size_t i = 0; i < m.body_len / 4u; ++i) {
            FUZZ_ASSERT(flt_f32_bits_finite(flt_f32_bits(flt_msg_global_param(&m, i))));
        }
    } else {
        FUZZ_ASSERT(m.kind == FLT_GLOBAL_DELTA && m.base_version < m.model_version);
        FUZZ_ASSERT(m.body_len >= FLT_MSG_DELTA_PAYLOAD_MIN &&
                    (m.body[0] >> 4) == FLT_MSG_DELTA_PAYLOAD_VERSION);
    }
    uint8_t *out = (uint8_t *)malloc(size);
    size_t len = 0;
    FUZZ_ASSERT(out != NULL);
    FUZZ_ASSERT(flt_msg_global_encode(&m, out, size, &len) == FLT_OK);
    FUZZ_ASSERT(len == size && memcmp(out, data, size) == 0);
    FUZZ_ASSERT(flt_msg_global_encode(&m, out, size - 1u, &len) == FLT_ERR_NOMEM);
    free(out);
    return 0;
}
