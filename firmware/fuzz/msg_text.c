/* msg_text.c - libFuzzer harness of the STATUS / LOG / ERROR decoder (flt_msg_text_decode,
 * messages.c).
 *
 * Feeds: byte 0 modulo 3 picks the type (STATUS, LOG, ERROR); the rest is the payload.
 * Asserts, beyond memory safety:
 * - the status is OK, TRUNCATED, FORMAT or OVERSIZE and equals flt_msg_check(type, ...); a
 *   type that is not a text type is refused with FLT_ERR_ARG;
 * - on success: the text lies inside the payload (after the 2-byte code for ERROR), is at most
 *   FLT_PROTO_MAX_TEXT bytes of printable ASCII, TAB or LF; STATUS and LOG carry code 0;
 *   encoding gives back exactly the payload, and a buffer one byte too small gives
 *   FLT_ERR_NOMEM.
 */
#include "fuzz.h"
#include "proto/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t types[3] = {FLT_MSG_STATUS, FLT_MSG_LOG, FLT_MSG_ERROR};
    if (size < 1u) {
        return 0;
    }
    uint8_t type = types[data[0] % 3u];
    const uint8_t *p = data + 1;
    size_t n = size - 1u;
    flt_msg_text_t m;
    FUZZ_ASSERT(flt_msg_text_decode(FLT_MSG_HELLO, p, n, &m) == FLT_ERR_ARG);
    flt_status_t s = flt_msg_text_decode(type, p, n, &m);
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
                s == FLT_ERR_OVERSIZE);
    FUZZ_ASSERT(s == flt_msg_check(type, p, n));
    if (s != FLT_OK) {
        return 0;
    }
    size_t head = type == FLT_MSG_ERROR ? 2u : 0u;
    FUZZ_ASSERT((const uint8_t *)m.text == p + head && m.text_len == n - head);
    FUZZ_ASSERT(m.text_len <= FLT_PROTO_MAX_TEXT && (type == FLT_MSG_ERROR || m.code == 0u));
    for (size_t i = 0; i < m.text_len; ++i) {
        uint8_t c = (uint8_t)m.text[i];
        FUZZ_ASSERT((c >= 0x20u && c <= 0x7Eu) || c == 0x09u || c == 0x0Au);
    }
    uint8_t out[2u + FLT_PROTO_MAX_TEXT];
    size_t len = 0;
    FUZZ_ASSERT(flt_msg_text_encode(type, &m, out, sizeof out, &len) == FLT_OK);
    FUZZ_ASSERT(len == n && (n == 0u || memcmp(out, p, n) == 0));
    if (n > 0u) {
        FUZZ_ASSERT(flt_msg_text_encode(type, &m, out, n - 1u, &len) == FLT_ERR_NOMEM);
    }
    return 0;
}
