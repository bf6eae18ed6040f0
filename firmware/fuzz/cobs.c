/* cobs.c - libFuzzer harness of the COBS codec (firmware/runtime/proto/cobs.c).
 *
 * Feeds: the input as COBS bytes to flt_cobs_decode, and the same input as plain data to the
 * one-shot and the streaming encoder (split at a point taken from the input).
 * Asserts, beyond memory safety:
 * - decode: success only with a decoded length <= the input length; the decoded bytes
 *   re-encode to at most FLT_COBS_MAX_ENCODED(len) bytes without a 0x00 and decode back to the
 *   same bytes; decoding into a buffer one byte too small fails with FLT_ERR_NOMEM; a failure
 *   is FLT_ERR_FORMAT (an input with a 0x00 or a block past the end) and nothing else;
 * - encode: any data encodes, without a 0x00, within FLT_COBS_MAX_ENCODED, and decodes back to
 *   itself; the streaming encoder fed in two parts writes the same bytes as the one-shot one;
 *   a buffer one byte too small gives FLT_ERR_NOMEM.
 */
#include "fuzz.h"
#include "proto/cobs.h"

static void check_decode(const uint8_t *data, size_t size)
{
    uint8_t *out = (uint8_t *)malloc(size + 1u);
    size_t n = 0;
    FUZZ_ASSERT(out != NULL);
    flt_status_t s = flt_cobs_decode(data, size, out, size, &n);
    if (s != FLT_OK) {
        FUZZ_ASSERT(s == FLT_ERR_FORMAT);
        free(out);
        return;
    }
    FUZZ_ASSERT(n <= size);
    if (n > 0u) {
        size_t n2 = 0;
        uint8_t *small = (uint8_t *)malloc(n - 1u + 1u);
        FUZZ_ASSERT(small != NULL);
        FUZZ_ASSERT(flt_cobs_decode(data, size, small, n - 1u, &n2) == FLT_ERR_NOMEM);
        free(small);
    }
    size_t cap = FLT_COBS_MAX_ENCODED(n);
    uint8_t *enc = (uint8_t *)malloc(cap);
    uint8_t *back = (uint8_t *)malloc(n + 1u);
    size_t elen = 0, blen = 0;
    FUZZ_ASSERT(enc != NULL && back != NULL);
    FUZZ_ASSERT(flt_cobs_encode(out, n, enc, cap, &elen) == FLT_OK);
    FUZZ_ASSERT(elen <= cap && memchr(enc, 0, elen) == NULL);
    FUZZ_ASSERT(flt_cobs_decode(enc, elen, back, n, &blen) == FLT_OK);
    FUZZ_ASSERT(blen == n && (n == 0u || memcmp(back, out, n) == 0));
    free(enc);
    free(back);
    free(out);
}

static void check_encode(const uint8_t *data, size_t size)
{
    size_t cap = FLT_COBS_MAX_ENCODED(size);
    uint8_t *enc = (uint8_t *)malloc(cap);
    uint8_t *enc2 = (uint8_t *)malloc(cap);
    uint8_t *back = (uint8_t *)malloc(size + 1u);
    size_t elen = 0, elen2 = 0, blen = 0;
    FUZZ_ASSERT(enc != NULL && enc2 != NULL && back != NULL);
    FUZZ_ASSERT(flt_cobs_encode(data, size, enc, cap, &elen) == FLT_OK);
    FUZZ_ASSERT(elen >= 1u && elen <= cap && memchr(enc, 0, elen) == NULL);
    FUZZ_ASSERT(flt_cobs_decode(enc, elen, back, size, &blen) == FLT_OK);
    FUZZ_ASSERT(blen == size && (size == 0u || memcmp(back, data, size) == 0));
    FUZZ_ASSERT(flt_cobs_encode(data, size, enc2, elen - 1u, &elen2) == FLT_ERR_NOMEM);

    size_t split = size > 0u ? data[0] % (size + 1u) : 0u;
    flt_cobs_enc_t st;
    flt_cobs_enc_begin(&st, enc2, cap);
    flt_cobs_enc_put(&st, data, split);
    flt_cobs_enc_put(&st, data + split, size - split);
    FUZZ_ASSERT(flt_cobs_enc_end(&st, &elen2) == FLT_OK);
    FUZZ_ASSERT(elen2 == elen && memcmp(enc, enc2, elen) == 0);
    free(enc);
    free(enc2);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode(data, size);
    check_encode(data, size);
    return 0;
}
