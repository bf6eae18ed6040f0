/* delta_fuzz.c - seeded random-mutation fuzzing of flt_payload_decode (run under ASan+UBSan
 * from tests/test_delta_fuzz.py).
 *
 *   delta_fuzz <seed> <iterations>
 *
 * Base payloads come from the real pipeline (flt_delta_compress on random data and value
 * widths, every entry format and both quantization modes) and must round-trip exactly. Each
 * iteration mutates a base payload, copies it into a heap buffer of exactly its length (so ASan
 * sees any read past the end) and decodes it into heap arrays of exactly the limits' sizes (so any
 * write past a limit is caught). A success must satisfy flt_delta_check and re-encode/re-decode to
 * the same delta. Prints one summary line; exit status 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flt_bytes.h"
#include "delta/delta.h"
#include "delta/payload.h"

#define MAX_N 1500u
#define MAX_PAYLOAD (FLT_PAYLOAD_HEADER_MAX + 4u * MAX_N + 5u * MAX_N + MAX_N + 64u)

static uint32_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift32 */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

static uint32_t below(uint32_t m)
{
    return m == 0u ? 0u : rnd() % m;
}

static float rnd_float(void)
{
    /* roughly symmetric, varied magnitude */
    float v = (float)((int32_t)(rnd() >> 1) - 0x3fffffff) / 1073741824.0f;
    uint32_t e = below(4u);
    return e == 0u ? v * 1e-3f : (e == 1u ? v * 100.0f : v);
}

static int fail(const char *what, uint32_t it)
{
    printf("FAIL %s at iteration %lu\n", what, (unsigned long)it);
    return 1;
}

static int same_delta(const flt_sparse_delta_t *a, const flt_sparse_delta_t *b)
{
    uint32_t ns = flt_delta_num_scales(a->k, a->mode, a->block_size);
    if (a->n != b->n || a->k != b->k || a->mode != b->mode || a->block_size != b->block_size) {
        return 0;
    }
    return (a->k == 0u || (memcmp(a->indices, b->indices, a->k * sizeof(uint32_t)) == 0 &&
                           memcmp(a->values, b->values, a->k) == 0)) &&
           (ns == 0u || memcmp(a->scales, b->scales, ns * sizeof(float)) == 0);
}

/* Fills base[] with a fresh payload; returns its length or 0 on failure. */
static size_t make_base(uint8_t *base, flt_sparse_delta_t *d, uint32_t *idx, int8_t *val, float *sc)
{
    static float local[MAX_N], global[MAX_N], work[MAX_N];
    static uint32_t idx2[MAX_N];
    static int8_t val2[MAX_N];
    static float sc2[MAX_N];
    flt_delta_config_t cfg;
    flt_payload_limits_t lim;
    flt_sparse_delta_t back;
    size_t len = 0;
    uint32_t n = 1u + below(below(4u) == 0u ? 40u : MAX_N);
    uint32_t i;
    flt_index_format_t fmt;
    for (i = 0; i < n; ++i) {
        global[i] = rnd_float();
        local[i] = below(3u) == 0u ? global[i] : rnd_float();
        work[i] = 0.0f;
    }
    cfg.k = below(2u) ? flt_delta_k_from_ppm(n, below(300000u)) : below(n + 1u);
    cfg.mode = below(2u) ? FLT_QUANT_BLOCK : FLT_QUANT_TENSOR;
    cfg.block_size = 1u + below(below(2u) ? 8u : 300u);
    cfg.error_feedback = 1;
    cfg.qmax = below(2u) ? 127u : 1u + below(127u);
    d->indices = idx;
    d->values = val;
    d->scales = sc;
    if (flt_delta_compress(&cfg, local, global, work, n, d) != FLT_OK) {
        return 0;
    }
    switch (below(6u)) {
    case 0:
        fmt = FLT_INDEX_VARINT;
        break;
    case 1:
        fmt = FLT_INDEX_BITMAP;
        break;
    case 2:
        fmt = FLT_INDEX_RICE;
        break;
    case 3:
        fmt = FLT_INDEX_RICE_VALUES;
        break;
    default:
        fmt = FLT_INDEX_AUTO;
        break;
    }
    if (flt_payload_encode(d, fmt, base, MAX_PAYLOAD, &len) != FLT_OK) {
        return 0;
    }
    lim.n_max = n;
    lim.k_max = d->k;
    lim.scales_max = flt_delta_num_scales(d->k, d->mode, d->block_size);
    back.indices = idx2;
    back.values = val2;
    back.scales = sc2;
    if (flt_payload_decode(base, len, &lim, &back) != FLT_OK || !same_delta(d, &back)) {
        return 0;
    }
    return len;
}

static size_t mutate(uint8_t *buf, size_t len, uint32_t base_n, uint32_t base_k)
{
    static const uint32_t interesting[] = {
        0u, 1u, 2u, 7u, 8u, 127u, 128u, 255u, 256u, 65535u, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    uint32_t rounds = 1u + below(4u);
    while (rounds-- > 0u) {
        uint32_t op = below(9u);
        if (len == 0u && op < 4u) {
            op = 7u;
        }
        switch (op) {
        case 0: /* flip a bit */
            buf[below((uint32_t)len)] ^= (uint8_t)(1u << below(8u));
            break;
        case 1: /* random byte */
            buf[below((uint32_t)len)] = (uint8_t)rnd();
            break;
        case 2: /* byte in the header */
            buf[below(len < FLT_PAYLOAD_HEADER_MAX ? (uint32_t)len : FLT_PAYLOAD_HEADER_MAX)] =
                (uint8_t)rnd();
            break;
        case 3: /* n or k to an interesting value: rewrite the header's varints */
            if (len >= FLT_PAYLOAD_FIXED_SIZE + 2u) {
                uint8_t head[FLT_PAYLOAD_HEADER_MAX];
                size_t pos = FLT_PAYLOAD_FIXED_SIZE;
                uint32_t n = 0u;
                uint32_t k = 0u;
                uint32_t v = interesting[below(13u)];
                size_t used;
                if (flt_varint_get(buf, len, &pos, &n) != FLT_OK ||
                    flt_varint_get(buf, len, &pos, &k) != FLT_OK) {
                    break;
                }
                if (below(3u) == 0u) {
                    v = (below(2u) ? base_n : base_k) + below(3u) - 1u;
                }
                if (below(2u)) {
                    n = v;
                } else {
                    k = v;
                }
                used = FLT_PAYLOAD_FIXED_SIZE;
                used += flt_varint_put(head + used, n);
                used += flt_varint_put(head + used, k);
                if (len - pos + used <= MAX_PAYLOAD) {
                    memmove(buf + used, buf + pos, len - pos);
                    flt_bytes_copy(buf + FLT_PAYLOAD_FIXED_SIZE, head + FLT_PAYLOAD_FIXED_SIZE,
                                   used - FLT_PAYLOAD_FIXED_SIZE);
                    len = len - pos + used;
                }
            }
            break;
        case 4: /* truncate */
            len = below((uint32_t)len + 1u);
            break;
        case 5: /* delete a range */
            if (len > 0u) {
                size_t at = below((uint32_t)len);
                size_t cnt = 1u + below((uint32_t)(len - at));
                memmove(buf + at, buf + at + cnt, len - at - cnt);
                len -= cnt;
            }
            break;
        case 6: /* duplicate a range (bounded by MAX_PAYLOAD) */
            if (len > 0u) {
                size_t at = below((uint32_t)len);
                size_t cnt = 1u + below(16u);
                if (cnt > len - at) {
                    cnt = len - at;
                }
                if (len + cnt <= MAX_PAYLOAD) {
                    memmove(buf + at + cnt, buf + at, len - at);
                    len += cnt;
                }
            }
            break;
        default: /* append */
            if (len < MAX_PAYLOAD) {
                buf[len++] = (uint8_t)rnd();
            }
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    static uint8_t base[MAX_PAYLOAD], work[MAX_PAYLOAD], again[MAX_PAYLOAD];
    static uint32_t idx[MAX_N], idx3[MAX_N];
    static int8_t val[MAX_N], val3[MAX_N];
    static float sc[MAX_N], sc3[MAX_N];
    unsigned long counts[FLT_STATUS_COUNT];
    flt_sparse_delta_t d;
    size_t base_len = 0;
    uint32_t iterations;
    uint32_t it;
    int st_i;

    if (argc != 3) {
        printf("usage: delta_fuzz <seed> <iterations>\n");
        return 2;
    }
    rng_state = (uint32_t)strtoul(argv[1], NULL, 10) | 1u;
    iterations = (uint32_t)strtoul(argv[2], NULL, 10);
    memset(counts, 0, sizeof counts);

    for (it = 0; it < iterations; ++it) {
        flt_payload_limits_t lim;
        flt_sparse_delta_t out;
        flt_status_t st;
        size_t len;
        uint8_t *input;
        if (it % 500u == 0u) {
            base_len = make_base(base, &d, idx, val, sc);
            if (base_len == 0u) {
                return fail("base payload did not round-trip", it);
            }
        }
        memcpy(work, base, base_len);
        len = mutate(work, base_len, d.n, d.k);
        input = (uint8_t *)malloc(len > 0u ? len : 1u);
        if (input == NULL) {
            return fail("malloc", it);
        }
        memcpy(input, work, len);
        /* limits around the base delta; sometimes generous */
        lim.n_max = below(4u) == 0u ? 0xffffffffu : d.n + below(3u);
        lim.k_max = below(4u) == 0u ? MAX_N : d.k + below(3u);
        lim.scales_max = below(4u) == 0u ? MAX_N : lim.k_max;
        if (lim.k_max > MAX_N) {
            lim.k_max = MAX_N;
        }
        if (lim.scales_max > MAX_N) {
            lim.scales_max = MAX_N;
        }
        out.indices = (uint32_t *)malloc((lim.k_max > 0u ? lim.k_max : 1u) * sizeof(uint32_t));
        out.values = (int8_t *)malloc(lim.k_max > 0u ? lim.k_max : 1u);
        out.scales = (float *)malloc((lim.scales_max > 0u ? lim.scales_max : 1u) * sizeof(float));
        if (out.indices == NULL || out.values == NULL || out.scales == NULL) {
            return fail("malloc", it);
        }
        st = flt_payload_decode(input, len, &lim, &out);
        if ((int)st < 0 || (int)st >= (int)FLT_STATUS_COUNT || st == FLT_ERR_ARG ||
            st == FLT_ERR_STATE || st == FLT_ERR_NOMEM || st == FLT_ERR_SHAPE) {
            return fail("unexpected status", it);
        }
        counts[st] += 1u;
        if (st == FLT_OK) {
            flt_payload_limits_t lim3;
            flt_sparse_delta_t back;
            size_t len2 = 0;
            if (flt_delta_check(&out) != FLT_OK) {
                return fail("accepted delta breaks invariants", it);
            }
            if (flt_payload_encode(&out, (flt_index_format_t)(input[0] & 0x03u), again, MAX_PAYLOAD,
                                   &len2) != FLT_OK) {
                return fail("accepted delta does not re-encode", it);
            }
            lim3.n_max = out.n;
            lim3.k_max = MAX_N;
            lim3.scales_max = MAX_N;
            back.indices = idx3;
            back.values = val3;
            back.scales = sc3;
            if (flt_payload_decode(again, len2, &lim3, &back) != FLT_OK ||
                !same_delta(&out, &back)) {
                return fail("re-encoded delta does not round-trip", it);
            }
        }
        free(out.indices);
        free(out.values);
        free(out.scales);
        free(input);
    }
    printf("iterations=%lu", (unsigned long)iterations);
    for (st_i = 0; st_i < (int)FLT_STATUS_COUNT; ++st_i) {
        if (counts[st_i] != 0u) {
            printf(" %s=%lu", flt_status_str((flt_status_t)st_i), counts[st_i]);
        }
    }
    printf("\n");
    return 0;
}
