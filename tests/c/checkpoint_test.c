/* checkpoint_test.c - C unit test of the device's checkpoint record (firmware/app/
 * flt_checkpoint.c), built under ASan + UBSan by tests/test_checkpoint.py. The record lives in a
 * heap block of exactly FLT_CKPT_SIZE(n) bytes, so a read one byte out is a sanitizer error.
 * Checks the layout byte for byte against an independent writer, every status of the contract
 * in its order, that a failing decode leaves the caller's state untouched, and every truncation
 * and single bit flip of a valid record. Prints one line per failed check and
 * "checkpoint_test: N checks, F failed"; exit 0 iff F == 0.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/flt_status.h"
#include "flt_checkpoint.h"
#include "proto/crc32.h"

#define N 37u

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void putf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}

/* The layout of flt_checkpoint.h written out by hand. */
static void reference(uint8_t *out, uint32_t version, uint32_t round, const float *params,
                      const float *residual)
{
    put32(out, 0x43544C46u);
    put32(out + 4, version);
    put32(out + 8, round);
    put32(out + 12, N);
    for (uint32_t i = 0; i < N; ++i) {
        putf(out + 20 + 4 * i, params[i]);
        putf(out + 20 + 4 * (N + i), residual[i]);
    }
    put32(out + 16, flt_crc32_update(0u, out + 20, 8u * N));
}

static int decodes_untouched(const uint8_t *buf, size_t len, uint32_t n, flt_status_t want)
{
    float p[N], r[N];
    for (uint32_t i = 0; i < N; ++i) {
        p[i] = -7.0f;
        r[i] = 9.0f;
    }
    flt_ckpt_t ck = {123u, 456u, p, r};
    flt_status_t s = flt_ckpt_decode(buf, len, n, &ck);
    int same = ck.model_version == 123u && ck.committed_round == 456u;
    for (uint32_t i = 0; i < N; ++i) {
        same = same && p[i] == -7.0f && r[i] == 9.0f;
    }
    return s == want && same;
}

int main(void)
{
    const size_t size = FLT_CKPT_SIZE(N);
    CHECK(size == 20u + 8u * N);
    float params[N], residual[N];
    for (uint32_t i = 0; i < N; ++i) {
        params[i] = 0.25f * (float)i - 3.0f;
        residual[i] = (i % 3u == 0u) ? -0.0f : 1e-7f * (float)(i + 1u);
    }
    uint8_t *ref = malloc(size);
    uint8_t *buf = malloc(size);
    reference(ref, 5u, 41u, params, residual);

    /* encode: the reference bytes; too small a buffer and bad arguments */
    flt_ckpt_t ck = {5u, 41u, params, residual};
    CHECK(flt_ckpt_encode(&ck, N, buf, size) == FLT_OK);
    CHECK(memcmp(buf, ref, size) == 0);
    CHECK(flt_ckpt_encode(&ck, N, buf, size - 1u) == FLT_ERR_NOMEM);
    CHECK(flt_ckpt_encode(&ck, 0u, buf, size) == FLT_ERR_ARG);
    CHECK(flt_ckpt_encode(NULL, N, buf, size) == FLT_ERR_ARG);
    CHECK(flt_ckpt_encode(&ck, N, NULL, size) == FLT_ERR_ARG);

    /* decode: the record back, -0.0 and all */
    float p2[N], r2[N];
    flt_ckpt_t out = {0u, 0u, p2, r2};
    CHECK(flt_ckpt_decode(ref, size, N, &out) == FLT_OK);
    CHECK(out.model_version == 5u && out.committed_round == 41u);
    CHECK(memcmp(p2, params, sizeof params) == 0 && memcmp(r2, residual, sizeof residual) == 0);
    CHECK(signbit(r2[0]));

    /* the no-round marker round-trips */
    ck.committed_round = FLT_CKPT_NO_ROUND;
    CHECK(flt_ckpt_encode(&ck, N, buf, size) == FLT_OK);
    CHECK(flt_ckpt_decode(buf, size, N, &out) == FLT_OK &&
          out.committed_round == FLT_CKPT_NO_ROUND);

    /* every status in the contract's order, the caller's state untouched */
    CHECK(decodes_untouched(ref, size - 1u, N, FLT_ERR_TRUNCATED));
    CHECK(decodes_untouched(ref, 0u, N, FLT_ERR_TRUNCATED));
    uint8_t *longer = malloc(size + 1u);
    memcpy(longer, ref, size);
    longer[size] = 0;
    CHECK(decodes_untouched(longer, size + 1u, N, FLT_ERR_OVERSIZE));
    free(longer);
    CHECK(decodes_untouched(ref, size, N - 1u, FLT_ERR_OVERSIZE)); /* another head: longer */
    memcpy(buf, ref, size);
    buf[0] ^= 1u;
    CHECK(decodes_untouched(buf, size, N, FLT_ERR_FORMAT));
    memcpy(buf, ref, size);
    put32(buf + 12, N + 1u);
    CHECK(decodes_untouched(buf, size, N, FLT_ERR_SHAPE));
    memcpy(buf, ref, size);
    put32(buf + 16, flt_crc32_update(0u, buf + 20, 8u * N) ^ 1u);
    CHECK(decodes_untouched(buf, size, N, FLT_ERR_CHECKSUM));
    memcpy(buf, ref, size);
    putf(buf + 20 + 4 * (N + 3u), NAN); /* a residual NaN with a CRC that matches */
    put32(buf + 16, flt_crc32_update(0u, buf + 20, 8u * N));
    CHECK(decodes_untouched(buf, size, N, FLT_ERR_NONFINITE));
    memcpy(buf, ref, size);
    putf(buf + 20, INFINITY);
    put32(buf + 16, flt_crc32_update(0u, buf + 20, 8u * N));
    CHECK(decodes_untouched(buf, size, N, FLT_ERR_NONFINITE));
    CHECK(decodes_untouched(NULL, size, N, FLT_ERR_ARG));
    CHECK(decodes_untouched(ref, size, 0u, FLT_ERR_ARG));

    /* a torn write (every truncation) and every single bit flip is refused, state untouched */
    int all_refused = 1;
    for (size_t len = 0; len < size; ++len) {
        uint8_t *cut = malloc(len ? len : 1u);
        memcpy(cut, ref, len);
        all_refused = all_refused && decodes_untouched(cut, len, N, FLT_ERR_TRUNCATED);
        free(cut);
    }
    CHECK(all_refused);
    int flips_refused = 1;
    for (size_t bit = 0; bit < 8u * size; ++bit) {
        memcpy(buf, ref, size);
        buf[bit / 8u] ^= (uint8_t)(1u << (bit % 8u));
        float p[N], r[N];
        flt_ckpt_t x = {0u, 0u, p, r};
        flt_status_t s = flt_ckpt_decode(buf, size, N, &x);
        /* the version and the round are not covered by the CRC: a flip there decodes to
         * another number (the host resyncs a device whose version it does not know) */
        int header_number = bit / 8u >= 4u && bit / 8u < 12u;
        flips_refused = flips_refused && (header_number ? s == FLT_OK : s != FLT_OK);
    }
    CHECK(flips_refused);

    free(ref);
    free(buf);
    return check_report("checkpoint_test");
}
