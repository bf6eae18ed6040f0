/* secagg_msg.c - libFuzzer harness of the secure-aggregation message decoders (secagg/msg.c):
 * BEGIN, ADVERTISE, COHORT, SHARES, MASKED, UNMASK, REVEAL.
 *
 * Feeds: byte 0 modulo 7 picks the decoder (in that order); the rest is the payload.
 * Asserts, beyond memory safety:
 * - the status is one msg.h lists (OK, TRUNCATED, FORMAT, UNSUPPORTED, NONFINITE, RANGE);
 * - on success every field is in its range (COHORT: 2 <= n <= MAX_COHORT, 1 <= t < n, w 16 or
 *   32 (or 8), n * qmax < 2^(w-1), ids strictly increasing; UNMASK: the lists disjoint; REVEAL:
 * kinds 0 or 1), encoding the decoded message gives back exactly the payload, and a buffer one byte
 *   too small gives FLT_ERR_NOMEM.
 */
#include "core/flt_bytes.h"
#include "fuzz.h"
#include "secagg/msg.h"

static uint8_t g_out[1u << 16];

static void same(flt_status_t s, size_t len, const uint8_t *p, size_t size)
{
    FUZZ_ASSERT(s == FLT_OK && len == size && memcmp(g_out, p, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u || size > sizeof g_out) {
        return 0;
    }
    const uint8_t which = (uint8_t)(data[0] % 7u);
    uint8_t *p = fuzz_dup(data + 1, size - 1u);
    const size_t n = size - 1u;
    size_t len = 0;
    flt_status_t s = FLT_OK;
    switch (which) {
    case 0: {
        flt_sa_begin_t m;
        s = flt_sa_begin_decode(p, n, &m);
        if (s == FLT_OK) {
            same(flt_sa_begin_encode(&m, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_begin_encode(&m, g_out, n - 1u, &len) == FLT_ERR_NOMEM);
        }
        break;
    }
    case 1: {
        flt_sa_advertise_t m;
        s = flt_sa_advertise_decode(p, n, &m);
        if (s == FLT_OK) {
            same(flt_sa_advertise_encode(&m, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_advertise_encode(&m, g_out, n - 1u, &len) == FLT_ERR_NOMEM);
        }
        break;
    }
    case 2: {
        flt_sa_cohort_t m;
        s = flt_sa_cohort_decode(p, n, &m);
        if (s == FLT_OK) {
            FUZZ_ASSERT(m.n >= 2u && m.n <= FLT_SECAGG_MAX_COHORT && m.t >= 1u && m.t < m.n);
            FUZZ_ASSERT((m.w == 8u || m.w == 16u || m.w == 32u) &&
                        (uint64_t)m.n * m.qmax < ((uint64_t)1 << (m.w - 1u)) && m.scale > 0.0f);
            for (uint32_t i = 1; i < m.n; ++i) {
                FUZZ_ASSERT(flt_sa_cohort_id(&m, i) > flt_sa_cohort_id(&m, i - 1u));
            }
            same(flt_sa_cohort_encode(&m, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_cohort_encode(&m, g_out, n - 1u, &len) == FLT_ERR_NOMEM);
        }
        break;
    }
    case 3: {
        flt_sa_shares_t m;
        s = flt_sa_shares_decode(p, n, &m);
        if (s == FLT_OK) {
            FUZZ_ASSERT(m.count < FLT_SECAGG_MAX_COHORT);
            same(flt_sa_shares_encode(&m, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_shares_encode(&m, g_out, n - 1u, &len) == FLT_ERR_NOMEM);
        }
        break;
    }
    case 4: {
        flt_sa_masked_t m;
        s = flt_sa_masked_decode(p, n, &m);
        if (s == FLT_OK) {
            FUZZ_ASSERT((m.w == 8u || m.w == 16u || m.w == 32u) && m.k >= 1u);
            FUZZ_ASSERT(n == FLT_SA_MASKED_HEADER + (size_t)m.k * (m.w / 8u));
            uint32_t *v = (uint32_t *)malloc(sizeof(uint32_t) * m.k);
            FUZZ_ASSERT(v != NULL);
            for (uint32_t j = 0; j < m.k; ++j) {
                v[j] = flt_sa_masked_value(&m, j);
                FUZZ_ASSERT(m.w == 32u || v[j] < (1u << m.w));
            }
            same(flt_sa_masked_encode(m.round, m.w, v, m.k, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_masked_encode(m.round, m.w, v, m.k, g_out, n - 1u, &len) ==
                        FLT_ERR_NOMEM);
            free(v);
        }
        break;
    }
    case 5: {
        flt_sa_unmask_t m;
        s = flt_sa_unmask_decode(p, n, &m);
        if (s == FLT_OK) {
            const uint32_t total = (uint32_t)m.n_surv + m.n_drop;
            FUZZ_ASSERT(m.n_surv >= 1u && total <= FLT_SECAGG_MAX_COHORT);
            for (uint32_t i = 0; i < m.n_surv; ++i) {
                for (uint32_t j = m.n_surv; j < total; ++j) {
                    FUZZ_ASSERT(flt_sa_unmask_id(&m, i) != flt_sa_unmask_id(&m, j));
                }
            }
            same(flt_sa_unmask_encode(&m, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_unmask_encode(&m, g_out, n - 1u, &len) == FLT_ERR_NOMEM);
        }
        break;
    }
    default: {
        flt_sa_reveal_t m;
        s = flt_sa_reveal_decode(p, n, &m);
        if (s == FLT_OK) {
            for (uint32_t i = 0; i < m.count; ++i) {
                FUZZ_ASSERT(m.entries[(size_t)i * FLT_SA_REVEAL_ENTRY + 4u] <= FLT_SA_KIND_MASK);
            }
            same(flt_sa_reveal_encode(&m, g_out, sizeof g_out, &len), len, p, n);
            FUZZ_ASSERT(flt_sa_reveal_encode(&m, g_out, n - 1u, &len) == FLT_ERR_NOMEM);
        }
        break;
    }
    }
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
                s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_NONFINITE || s == FLT_ERR_RANGE);
    free(p);
    return 0;
}
