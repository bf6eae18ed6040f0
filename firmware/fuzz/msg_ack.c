/* msg_ack.c - libFuzzer harness of the ACK / NACK decoder (flt_msg_ack_decode, messages.c).
 *
 * Feeds: byte 0 bit 0 picks the type (clear: ACK, set: NACK); the rest is the payload.
 * Asserts, beyond memory safety:
 * - the status is OK, TRUNCATED, FORMAT or RANGE and equals flt_msg_check(type, ...);
 * - any type other than ACK and NACK is refused with FLT_ERR_ARG;
 * - on success: acked_seq >= 1; ACK: code 0 or 1; NACK: code != 0; encoding gives back exactly
 *   the payload (5 bytes), and a buffer one byte too small gives FLT_ERR_NOMEM.
 * With -DFLT_FUZZ_PLANTED_BUG the harness reads one byte past its input when an ACK or NACK of
 * seq 0xB06B5EED decodes (a 32-bit compare, which libFuzzer's comparison tracing solves): the
 * deliberate bug tests/test_fuzz.py checks the runner finds and reports.
 */
#include "fuzz.h"
#include "proto/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    uint8_t type = (data[0] & 1u) ? (uint8_t)FLT_MSG_NACK : (uint8_t)FLT_MSG_ACK;
    const uint8_t *p = data + 1;
    size_t n = size - 1u;
    flt_msg_ack_t m;
    FUZZ_ASSERT(flt_msg_ack_decode(FLT_MSG_STATUS, p, n, &m) == FLT_ERR_ARG);
    flt_status_t s = flt_msg_ack_decode(type, p, n, &m);
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT || s == FLT_ERR_RANGE);
    FUZZ_ASSERT(s == flt_msg_check(type, p, n));
    if (s != FLT_OK) {
        return 0;
    }
    FUZZ_ASSERT(m.acked_seq >= 1u);
#ifdef FLT_FUZZ_PLANTED_BUG
    if (m.acked_seq == 0xB06B5EEDu) {
        volatile uint8_t past = data[size]; /* heap-buffer-overflow: ASan reports it */
        (void)past;
    }
#endif
    FUZZ_ASSERT(type == FLT_MSG_ACK ? m.code <= FLT_ACK_DUPLICATE : m.code != 0u);
    uint8_t out[FLT_MSG_ACK_SIZE];
    size_t len = 0;
    FUZZ_ASSERT(flt_msg_ack_encode(type, &m, out, sizeof out, &len) == FLT_OK);
    FUZZ_ASSERT(len == n && memcmp(out, p, n) == 0);
    FUZZ_ASSERT(flt_msg_ack_encode(type, &m, out, sizeof out - 1u, &len) == FLT_ERR_NOMEM);
    return 0;
}
