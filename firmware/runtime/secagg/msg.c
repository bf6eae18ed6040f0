/* msg.c - secure-aggregation message codecs; see msg.h. Each encoder writes the payload, then
 * runs its decoder on what it wrote, so an encoder accepts exactly what the decoder accepts. */
#include "msg.h"

#include "core/flt_bits.h"
#include "core/flt_bytes.h"
#include "crypto/secagg_mask.h"

static int zeros(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; ++i) {
        acc = (uint8_t)(acc | p[i]);
    }
    return acc == 0u;
}

/* ids at p (stride bytes apart, count of them) strictly increasing */
static int increasing(const uint8_t *p, size_t stride, uint32_t count)
{
    for (uint32_t i = 1; i < count; ++i) {
        if (flt_le_get32(p + (size_t)i * stride) <= flt_le_get32(p + (size_t)(i - 1u) * stride)) {
            return 0;
        }
    }
    return 1;
}

/* an exact length check for a fixed part plus count entries: TRUNCATED below, FORMAT above */
static flt_status_t exact(size_t len, size_t header, size_t entry, uint64_t count)
{
    const uint64_t want = (uint64_t)header + (uint64_t)entry * count;
    FLT_REQUIRE((uint64_t)len >= want, FLT_ERR_TRUNCATED);
    FLT_REQUIRE((uint64_t)len == want, FLT_ERR_FORMAT);
    return FLT_OK;
}

/* ---- BEGIN, ADVERTISE ------------------------------------------------------------------ */

flt_status_t flt_sa_begin_decode(const uint8_t *buf, size_t len, flt_sa_begin_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_TRY(exact(len, FLT_SA_BEGIN_SIZE, 0u, 0u));
    m->epoch = flt_le_get32(buf);
    m->round = flt_le_get32(buf + 4);
    return FLT_OK;
}

flt_status_t flt_sa_begin_encode(const flt_sa_begin_t *m, uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(m != NULL && out != NULL && len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(cap >= FLT_SA_BEGIN_SIZE, FLT_ERR_NOMEM);
    flt_le_put32(out, m->epoch);
    flt_le_put32(out + 4, m->round);
    *len = FLT_SA_BEGIN_SIZE;
    return FLT_OK;
}

flt_status_t flt_sa_advertise_decode(const uint8_t *buf, size_t len, flt_sa_advertise_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_TRY(exact(len, FLT_SA_ADVERTISE_SIZE, 0u, 0u));
    m->epoch = flt_le_get32(buf);
    m->round = flt_le_get32(buf + 4);
    flt_bytes_copy(m->chan_pk, buf + 8, 32u);
    flt_bytes_copy(m->mask_pk, buf + 40, 32u);
    return FLT_OK;
}

flt_status_t flt_sa_advertise_encode(const flt_sa_advertise_t *m, uint8_t *out, size_t cap,
                                     size_t *len)
{
    FLT_REQUIRE(m != NULL && out != NULL && len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(cap >= FLT_SA_ADVERTISE_SIZE, FLT_ERR_NOMEM);
    flt_le_put32(out, m->epoch);
    flt_le_put32(out + 4, m->round);
    flt_bytes_copy(out + 8, m->chan_pk, 32u);
    flt_bytes_copy(out + 40, m->mask_pk, 32u);
    *len = FLT_SA_ADVERTISE_SIZE;
    return FLT_OK;
}

/* ---- COHORT ---------------------------------------------------------------------------- */

flt_status_t flt_sa_cohort_decode(const uint8_t *buf, size_t len, flt_sa_cohort_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_SA_COHORT_HEADER, FLT_ERR_TRUNCATED);
    m->round = flt_le_get32(buf);
    m->epoch = flt_le_get32(buf + 4);
    m->index_seed = flt_le_get32(buf + 8);
    m->k = flt_le_get32(buf + 12);
    m->scale = flt_le_get_f32(buf + 16);
    m->qmax = flt_le_get32(buf + 20);
    m->t = flt_le_get16(buf + 24);
    m->n = flt_le_get16(buf + 26);
    m->w = buf[28];
    m->members = buf + FLT_SA_COHORT_HEADER;
    FLT_REQUIRE(zeros(buf + 29, 3u), FLT_ERR_FORMAT);
    FLT_REQUIRE(m->w == 8u || m->w == 16u || m->w == 32u, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(flt_f32_bits_finite(flt_le_get32(buf + 16)), FLT_ERR_NONFINITE);
    FLT_REQUIRE(m->scale > 0.0f, FLT_ERR_RANGE);
    FLT_REQUIRE(m->n >= 2u && m->n <= FLT_SECAGG_MAX_COHORT, FLT_ERR_RANGE);
    FLT_REQUIRE(m->t >= 1u && m->t < m->n && 2u * m->t > m->n - 1u, FLT_ERR_RANGE);
    FLT_REQUIRE(m->k >= 1u && m->k <= FLT_SECAGG_MAX_VALUES, FLT_ERR_RANGE);
    /* n * qmax < 2^(w-1): the sum of n values in -qmax..qmax is a signed w-bit integer */
    FLT_REQUIRE(m->qmax >= 1u && m->qmax <= (1u << 24) &&
                    (uint64_t)m->n * m->qmax < ((uint64_t)1 << (m->w - 1u)),
                FLT_ERR_RANGE);
    FLT_TRY(exact(len, FLT_SA_COHORT_HEADER, FLT_SA_COHORT_ENTRY, m->n));
    FLT_REQUIRE(increasing(m->members, FLT_SA_COHORT_ENTRY, m->n), FLT_ERR_FORMAT);
    return FLT_OK;
}

flt_status_t flt_sa_cohort_encode(const flt_sa_cohort_t *m, uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(m != NULL && out != NULL && len != NULL && m->members != NULL, FLT_ERR_ARG);
    const size_t n = FLT_SA_COHORT_HEADER + (size_t)FLT_SA_COHORT_ENTRY * m->n;
    FLT_REQUIRE(n <= cap, FLT_ERR_NOMEM);
    flt_le_put32(out, m->round);
    flt_le_put32(out + 4, m->epoch);
    flt_le_put32(out + 8, m->index_seed);
    flt_le_put32(out + 12, m->k);
    flt_le_put_f32(out + 16, m->scale);
    flt_le_put32(out + 20, m->qmax);
    flt_le_put16(out + 24, m->t);
    flt_le_put16(out + 26, m->n);
    out[28] = m->w;
    out[29] = out[30] = out[31] = 0u;
    flt_bytes_copy(out + FLT_SA_COHORT_HEADER, m->members, n - FLT_SA_COHORT_HEADER);
    flt_sa_cohort_t check;
    FLT_TRY(flt_sa_cohort_decode(out, n, &check));
    *len = n;
    return FLT_OK;
}

uint32_t flt_sa_cohort_id(const flt_sa_cohort_t *m, uint32_t i)
{
    return flt_le_get32(m->members + (size_t)i * FLT_SA_COHORT_ENTRY);
}

const uint8_t *flt_sa_cohort_chan_pk(const flt_sa_cohort_t *m, uint32_t i)
{
    return m->members + (size_t)i * FLT_SA_COHORT_ENTRY + 4u;
}

const uint8_t *flt_sa_cohort_mask_pk(const flt_sa_cohort_t *m, uint32_t i)
{
    return m->members + (size_t)i * FLT_SA_COHORT_ENTRY + 36u;
}

/* ---- SHARES, REVEAL -------------------------------------------------------------------- */

static flt_status_t list_decode(const uint8_t *buf, size_t len, size_t entry, uint32_t *round,
                                uint16_t *count, const uint8_t **entries)
{
    FLT_REQUIRE(len >= 8u, FLT_ERR_TRUNCATED);
    *round = flt_le_get32(buf);
    *count = flt_le_get16(buf + 4);
    *entries = buf + 8;
    FLT_REQUIRE(zeros(buf + 6, 2u), FLT_ERR_FORMAT);
    FLT_REQUIRE(*count <= FLT_SECAGG_MAX_COHORT - 1u, FLT_ERR_RANGE);
    FLT_TRY(exact(len, 8u, entry, *count));
    FLT_REQUIRE(increasing(*entries, entry, *count), FLT_ERR_FORMAT);
    return FLT_OK;
}

static flt_status_t list_encode(uint32_t round, uint16_t count, const uint8_t *entries,
                                size_t entry, uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(out != NULL && len != NULL && (entries != NULL || count == 0u), FLT_ERR_ARG);
    const size_t n = 8u + entry * count;
    FLT_REQUIRE(n <= cap, FLT_ERR_NOMEM);
    flt_le_put32(out, round);
    flt_le_put16(out + 4, count);
    out[6] = out[7] = 0u;
    if (count > 0u) {
        flt_bytes_copy(out + 8, entries, entry * count);
    }
    *len = n;
    return FLT_OK;
}

flt_status_t flt_sa_shares_decode(const uint8_t *buf, size_t len, flt_sa_shares_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    return list_decode(buf, len, FLT_SA_SHARES_ENTRY, &m->round, &m->count, &m->entries);
}

flt_status_t flt_sa_shares_encode(const flt_sa_shares_t *m, uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(m != NULL, FLT_ERR_ARG);
    size_t n = 0;
    FLT_TRY(list_encode(m->round, m->count, m->entries, FLT_SA_SHARES_ENTRY, out, cap, &n));
    flt_sa_shares_t check;
    FLT_TRY(flt_sa_shares_decode(out, n, &check));
    *len = n;
    return FLT_OK;
}

flt_status_t flt_sa_reveal_decode(const uint8_t *buf, size_t len, flt_sa_reveal_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_TRY(list_decode(buf, len, FLT_SA_REVEAL_ENTRY, &m->round, &m->count, &m->entries));
    for (uint32_t i = 0; i < m->count; ++i) {
        FLT_REQUIRE(m->entries[(size_t)i * FLT_SA_REVEAL_ENTRY + 4u] <= FLT_SA_KIND_MASK,
                    FLT_ERR_FORMAT);
    }
    return FLT_OK;
}

flt_status_t flt_sa_reveal_encode(const flt_sa_reveal_t *m, uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(m != NULL, FLT_ERR_ARG);
    size_t n = 0;
    FLT_TRY(list_encode(m->round, m->count, m->entries, FLT_SA_REVEAL_ENTRY, out, cap, &n));
    flt_sa_reveal_t check;
    FLT_TRY(flt_sa_reveal_decode(out, n, &check));
    *len = n;
    return FLT_OK;
}

/* ---- MASKED ---------------------------------------------------------------------------- */

flt_status_t flt_sa_masked_decode(const uint8_t *buf, size_t len, flt_sa_masked_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_SA_MASKED_HEADER, FLT_ERR_TRUNCATED);
    m->round = flt_le_get32(buf);
    m->k = flt_le_get32(buf + 4);
    m->w = buf[8];
    m->values = buf + FLT_SA_MASKED_HEADER;
    FLT_REQUIRE(zeros(buf + 9, 3u), FLT_ERR_FORMAT);
    FLT_REQUIRE(m->w == 8u || m->w == 16u || m->w == 32u, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(m->k >= 1u && m->k <= FLT_SECAGG_MAX_VALUES, FLT_ERR_RANGE);
    return exact(len, FLT_SA_MASKED_HEADER, m->w / 8u, m->k);
}

flt_status_t flt_sa_masked_encode(uint32_t round, uint8_t w, const uint32_t *values, uint32_t k,
                                  uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(values != NULL && out != NULL && len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(w == 8u || w == 16u || w == 32u, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(k >= 1u && k <= FLT_SECAGG_MAX_VALUES, FLT_ERR_RANGE);
    const uint64_t n = FLT_SA_MASKED_HEADER + (uint64_t)k * (w / 8u);
    FLT_REQUIRE(n <= (uint64_t)cap, FLT_ERR_NOMEM);
    flt_le_put32(out, round);
    flt_le_put32(out + 4, k);
    out[8] = w;
    out[9] = out[10] = out[11] = 0u;
    uint8_t *p = out + FLT_SA_MASKED_HEADER;
    for (uint32_t j = 0; j < k; ++j) { /* the low w bits: the sum mod 2^w still decodes */
        if (w == 8u) {
            p[j] = (uint8_t)(values[j] & 0xFFu);
        } else if (w == 16u) {
            flt_le_put16(p + 2u * (size_t)j, (uint16_t)(values[j] & 0xFFFFu));
        } else {
            flt_le_put32(p + 4u * (size_t)j, values[j]);
        }
    }
    *len = (size_t)n;
    return FLT_OK;
}

uint32_t flt_sa_masked_value(const flt_sa_masked_t *m, uint32_t j)
{
    if (m->w == 8u) {
        return m->values[j];
    }
    return m->w == 16u ? flt_le_get16(m->values + 2u * (size_t)j)
                       : flt_le_get32(m->values + 4u * (size_t)j);
}

/* ---- UNMASK ---------------------------------------------------------------------------- */

flt_status_t flt_sa_unmask_decode(const uint8_t *buf, size_t len, flt_sa_unmask_t *m)
{
    FLT_REQUIRE(buf != NULL && m != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_SA_UNMASK_HEADER, FLT_ERR_TRUNCATED);
    m->round = flt_le_get32(buf);
    m->n_surv = flt_le_get16(buf + 4);
    m->n_drop = flt_le_get16(buf + 6);
    m->ids = buf + FLT_SA_UNMASK_HEADER;
    FLT_REQUIRE(m->n_surv >= 1u && (uint32_t)m->n_surv + m->n_drop <= FLT_SECAGG_MAX_COHORT,
                FLT_ERR_RANGE);
    FLT_TRY(exact(len, FLT_SA_UNMASK_HEADER, 4u, (uint32_t)m->n_surv + m->n_drop));
    FLT_REQUIRE(increasing(m->ids, 4u, m->n_surv), FLT_ERR_FORMAT);
    const uint8_t *drop = m->ids + 4u * (size_t)m->n_surv;
    FLT_REQUIRE(increasing(drop, 4u, m->n_drop), FLT_ERR_FORMAT);
    for (uint32_t i = 0; i < m->n_surv; ++i) { /* disjoint (both lists are short) */
        for (uint32_t j = 0; j < m->n_drop; ++j) {
            FLT_REQUIRE(flt_le_get32(m->ids + 4u * (size_t)i) !=
                            flt_le_get32(drop + 4u * (size_t)j),
                        FLT_ERR_FORMAT);
        }
    }
    return FLT_OK;
}

flt_status_t flt_sa_unmask_encode(const flt_sa_unmask_t *m, uint8_t *out, size_t cap, size_t *len)
{
    FLT_REQUIRE(m != NULL && out != NULL && len != NULL, FLT_ERR_ARG);
    const uint32_t count = (uint32_t)m->n_surv + m->n_drop;
    FLT_REQUIRE(m->ids != NULL || count == 0u, FLT_ERR_ARG);
    const size_t n = FLT_SA_UNMASK_HEADER + 4u * (size_t)count;
    FLT_REQUIRE(n <= cap, FLT_ERR_NOMEM);
    flt_le_put32(out, m->round);
    flt_le_put16(out + 4, m->n_surv);
    flt_le_put16(out + 6, m->n_drop);
    if (count > 0u) {
        flt_bytes_copy(out + FLT_SA_UNMASK_HEADER, m->ids, 4u * (size_t)count);
    }
    flt_sa_unmask_t check;
    FLT_TRY(flt_sa_unmask_decode(out, n, &check));
    *len = n;
    return FLT_OK;
}

uint32_t flt_sa_unmask_id(const flt_sa_unmask_t *m, uint32_t i)
{
    return flt_le_get32(m->ids + 4u * (size_t)i);
}
