/* checkpoint.c - libFuzzer harness of the checkpoint record (flt_ckpt_decode / _encode,
 * firmware/app/flt_checkpoint.c): what a device reads back from its storage at boot, which a
 * torn write, worn flash or another firmware may have left in any state.
 *
 * Feeds: byte 0: the head size n the device expects (1 + byte 0 % 64) and, bit 7 clear, the
 * harness first writes the right CRC-32 into the record (over the body the length allows), so
 * the fuzzer reaches the checks behind the checksum. The rest is the record, a heap copy of
 * exactly its length.
 * Asserts, beyond memory safety:
 * - the status is one flt_checkpoint.h lists, and the first check that fails in its order:
 *   TRUNCATED / OVERSIZE from the length alone, then FORMAT (magic), SHAPE (n), CHECKSUM, then
 *   NONFINITE, computed here from the bytes;
 * - a refused record leaves the caller's state (version, round, both arrays) untouched;
 * - an accepted one: every float finite, and flt_ckpt_encode of what was read gives back the
 *   same bytes.
 */
#include "core/flt_bits.h"
#include "core/flt_bytes.h"
#include "flt_checkpoint.h"
#include "fuzz.h"
#include "proto/crc32.h"

#define MAX_N 64u

static flt_status_t expected(const uint8_t *b, size_t len, uint32_t n)
{
    size_t size = FLT_CKPT_SIZE(n);
    if (len < size) {
        return FLT_ERR_TRUNCATED;
    }
    if (len > size) {
        return FLT_ERR_OVERSIZE;
    }
    if (flt_le_get32(b) != FLT_CKPT_MAGIC) {
        return FLT_ERR_FORMAT;
    }
    if (flt_le_get32(b + 12) != n) {
        return FLT_ERR_SHAPE;
    }
    if (flt_le_get32(b + 16) != flt_crc32_update(0u, b + FLT_CKPT_HEADER, 8u * n)) {
        return FLT_ERR_CHECKSUM;
    }
    for (uint32_t i = 0; i < 2u * n; ++i) {
        if (!flt_f32_bits_finite(flt_le_get32(b + FLT_CKPT_HEADER + 4u * i))) {
            return FLT_ERR_NONFINITE;
        }
    }
    return FLT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    uint32_t n = 1u + (data[0] % MAX_N);
    size_t len = size - 1u;
    uint8_t *rec = fuzz_dup(data + 1, len);
    if ((data[0] & 0x80u) == 0u && len >= FLT_CKPT_HEADER) {
        size_t body = len - FLT_CKPT_HEADER < 8u * n ? len - FLT_CKPT_HEADER : 8u * n;
        flt_le_put32(rec + 16, flt_crc32_update(0u, rec + FLT_CKPT_HEADER, body));
    }
    float params[MAX_N], residual[MAX_N];
    for (uint32_t i = 0; i < MAX_N; ++i) {
        params[i] = 1.5f;
        residual[i] = -2.5f;
    }
    flt_ckpt_t ck = {0xA5A5A5A5u, 0x5A5A5A5Au, params, residual};
    flt_status_t s = flt_ckpt_decode(rec, len, n, &ck);
    FUZZ_ASSERT(s == expected(rec, len, n));
    if (s != FLT_OK) {
        FUZZ_ASSERT(ck.model_version == 0xA5A5A5A5u && ck.committed_round == 0x5A5A5A5Au);
        for (uint32_t i = 0; i < n; ++i) {
            FUZZ_ASSERT(flt_f32_bits(params[i]) == flt_f32_bits(1.5f) &&
                        flt_f32_bits(residual[i]) == flt_f32_bits(-2.5f));
        }
    } else {
        uint8_t again[FLT_CKPT_SIZE(MAX_N)];
        for (uint32_t i = 0; i < n; ++i) {
            FUZZ_ASSERT(flt_f32_bits_finite(flt_f32_bits(params[i])) &&
                        flt_f32_bits_finite(flt_f32_bits(residual[i])));
        }
        FUZZ_ASSERT(flt_ckpt_encode(&ck, n, again, sizeof again) == FLT_OK);
        FUZZ_ASSERT(memcmp(again, rec, len) == 0);
    }
    free(rec);
    return 0;
}
