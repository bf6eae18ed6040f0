/* msg_hello.c - libFuzzer harness of the HELLO decoder (flt_msg_hello_decode, messages.c).
 *
 * Feeds: the whole input as a HELLO payload.
 * Asserts, beyond memory safety:
 * - the status is OK, TRUNCATED or FORMAT (the contract's for HELLO) and equals
 *   flt_msg_check(FLT_MSG_HELLO, ...), the check the receiver runs;
 * - on success: the name is NUL-terminated, 1..16 printable ASCII characters, and encoding the
 *   message gives back exactly the input (44 bytes: the layout is canonical); encoding into a
 *   buffer one byte too small fails with FLT_ERR_NOMEM.
 */
#include "fuzz.h"
#include "proto/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flt_msg_hello_t m;
    flt_status_t s = flt_msg_hello_decode(data, size, &m);
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT);
    FUZZ_ASSERT(s == flt_msg_check(FLT_MSG_HELLO, data, size));
    if (s != FLT_OK) {
        return 0;
    }
    size_t n = strlen(m.name);
    FUZZ_ASSERT(n >= 1u && n <= FLT_MSG_NAME_SIZE);
    for (size_t i = 0; i < n; ++i) {
        FUZZ_ASSERT(m.name[i] >= 0x20 && m.name[i] <= 0x7E);
    }
    uint8_t out[FLT_MSG_HELLO_SIZE];
    size_t len = 0;
    FUZZ_ASSERT(flt_msg_hello_encode(&m, out, sizeof out, &len) == FLT_OK);
    FUZZ_ASSERT(len == size && memcmp(out, data, size) == 0);
    FUZZ_ASSERT(flt_msg_hello_encode(&m, out, sizeof out - 1u, &len) == FLT_ERR_NOMEM);
    return 0;
}
