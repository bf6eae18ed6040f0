/* client.c - a device's side of secure aggregation; see client.h. */
#include "client.h"

#include "box.h"
#include "core/flt_bytes.h"
#include "crypto/x25519.h"
#include "keys.h"
#include "proto/hmac.h"
#include "shamir.h"

enum { PH_IDLE = 0, PH_BEGUN, PH_COHORT, PH_MASKED };

static void wipe_round(flt_secagg_client_t *c)
{
    flt_bytes_zero(c->mask_sk, sizeof c->mask_sk);
    flt_bytes_zero(c->self_seed, sizeof c->self_seed);
    flt_bytes_zero(c->m, sizeof c->m);
    c->n = 0;
    c->phase = PH_IDLE;
}

flt_status_t flt_secagg_client_init(flt_secagg_client_t *c, uint32_t device_id,
                                    const uint8_t secret[32])
{
    FLT_REQUIRE(c != NULL && secret != NULL, FLT_ERR_ARG);
    flt_bytes_zero(c, sizeof *c);
    c->device_id = device_id;
    flt_bytes_copy(c->secret, secret, 32u);
    return FLT_OK;
}

void flt_secagg_client_wipe(flt_secagg_client_t *c)
{
    if (c != NULL) {
        flt_bytes_zero(c, sizeof *c);
    }
}

flt_status_t flt_secagg_begin(flt_secagg_client_t *c, const flt_sa_begin_t *b,
                              flt_sa_advertise_t *adv)
{
    FLT_REQUIRE(c != NULL && b != NULL && adv != NULL, FLT_ERR_ARG);
    const int again = c->in_epoch && c->any_round && b->epoch == c->epoch && b->round == c->round;
    if (!(again && c->phase == PH_BEGUN)) {
        FLT_REQUIRE(!c->in_epoch || b->epoch >= c->epoch, FLT_ERR_REPLAY);
        if (!c->in_epoch || b->epoch != c->epoch) { /* a new session: its channel key */
            flt_bytes_zero(c->chan, sizeof c->chan);
            FLT_TRY(
                flt_secagg_derive(c->secret, 32u, "chan", b->epoch, 0u, 0u, 1u, c->chan_sk, 32u));
            flt_x25519_public(c->chan_pk, c->chan_sk);
            c->epoch = b->epoch;
            c->in_epoch = 1u;
            c->any_round = 0u;
        }
        FLT_REQUIRE(!c->any_round || b->round > c->round, FLT_ERR_REPLAY);
        wipe_round(c);
        c->round = b->round;
        c->any_round = 1u;
        FLT_TRY(
            flt_secagg_derive(c->secret, 32u, "mkey", c->epoch, c->round, 0u, 2u, c->mask_sk, 32u));
        FLT_TRY(flt_secagg_derive(c->secret, 32u, "self", c->epoch, c->round, 0u, 2u, c->self_seed,
                                  32u));
        flt_x25519_public(c->mask_pk, c->mask_sk);
        c->phase = PH_BEGUN;
    }
    adv->epoch = c->epoch;
    adv->round = c->round;
    flt_bytes_copy(adv->chan_pk, c->chan_pk, 32u);
    flt_bytes_copy(adv->mask_pk, c->mask_pk, 32u);
    return FLT_OK;
}

static int same32(const uint8_t *a, const uint8_t *b)
{
    return flt_ct_equal(a, b, 32u); /* public keys: constant time is not needed, but harmless */
}

/* the channel secret of member id with public key pk: cached, else computed in a free slot */
static flt_status_t chan_slot(flt_secagg_client_t *c, uint32_t id, const uint8_t *pk, uint8_t *slot)
{
    for (uint32_t i = 0; i < FLT_SECAGG_MAX_COHORT; ++i) {
        flt_secagg_chan_t *s = &c->chan[i];
        if (s->valid && s->id == id && same32(s->pk, pk)) {
            s->used = 1u;
            *slot = (uint8_t)i;
            return FLT_OK;
        }
    }
    for (uint32_t i = 0; i < FLT_SECAGG_MAX_COHORT; ++i) {
        flt_secagg_chan_t *s = &c->chan[i];
        if (!s->used) { /* at most n <= MAX slots are used: one is free */
            flt_bytes_zero(s, sizeof *s);
            s->id = id;
            flt_bytes_copy(s->pk, pk, 32u);
            FLT_TRY(flt_x25519_shared(s->chan, c->chan_sk, pk));
            s->valid = 1u;
            s->used = 1u;
            *slot = (uint8_t)i;
            return FLT_OK;
        }
    }
    return FLT_ERR_STATE; /* unreachable: n <= FLT_SECAGG_MAX_COHORT */
}

static flt_status_t take_cohort(flt_secagg_client_t *c, const flt_sa_cohort_t *co)
{
    FLT_REQUIRE(c->phase == PH_BEGUN && co->round == c->round && co->epoch == c->epoch,
                FLT_ERR_STATE);
    FLT_REQUIRE(co->n >= 2u && co->n <= FLT_SECAGG_MAX_COHORT && co->t >= 1u && co->t < co->n &&
                    2u * co->t > co->n - 1u,
                FLT_ERR_RANGE); /* the threshold rule of msg.h, for a cohort not decoded */
    uint32_t self = co->n;
    for (uint32_t i = 0; i < co->n; ++i) {
        if (flt_sa_cohort_id(co, i) == c->device_id) {
            self = i;
        }
    }
    FLT_REQUIRE(self < co->n, FLT_ERR_STATE);
    FLT_REQUIRE(same32(flt_sa_cohort_chan_pk(co, self), c->chan_pk) &&
                    same32(flt_sa_cohort_mask_pk(co, self), c->mask_pk),
                FLT_ERR_STATE);
    for (uint32_t i = 0; i < FLT_SECAGG_MAX_COHORT; ++i) {
        c->chan[i].used = 0u;
    }
    c->n = co->n;
    c->self = (uint16_t)self;
    c->t = co->t;
    c->k = co->k;
    c->w = co->w;
    c->index_seed = co->index_seed;
    c->scale = co->scale;
    c->qmax = co->qmax;
    for (uint32_t i = 0; i < co->n; ++i) { /* keep the cached channels of this cohort first */
        const uint32_t id = flt_sa_cohort_id(co, i);
        for (uint32_t j = 0; j < FLT_SECAGG_MAX_COHORT && i != self; ++j) {
            if (c->chan[j].valid && c->chan[j].id == id &&
                same32(c->chan[j].pk, flt_sa_cohort_chan_pk(co, i))) {
                c->chan[j].used = 1u;
            }
        }
    }
    for (uint32_t i = 0; i < co->n; ++i) {
        flt_secagg_member_t *m = &c->m[i];
        m->mask.id = flt_sa_cohort_id(co, i);
        if (i == self) {
            continue;
        }
        FLT_TRY(chan_slot(c, m->mask.id, flt_sa_cohort_chan_pk(co, i), &m->chan_slot));
        FLT_TRY(flt_x25519_shared(m->mask.shared, c->mask_sk, flt_sa_cohort_mask_pk(co, i)));
    }
    c->phase = PH_COHORT;
    return FLT_OK;
}

flt_status_t flt_secagg_cohort(flt_secagg_client_t *c, const flt_sa_cohort_t *co)
{
    FLT_REQUIRE(c != NULL && co != NULL && co->members != NULL, FLT_ERR_ARG);
    flt_status_t s = take_cohort(c, co);
    if (s != FLT_OK) {
        wipe_round(c);
    }
    return s;
}

flt_status_t flt_secagg_deal(flt_secagg_client_t *c, uint8_t *entries, size_t cap, uint16_t *count)
{
    FLT_REQUIRE(c != NULL && entries != NULL && count != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(c->phase == PH_COHORT, FLT_ERR_STATE);
    FLT_REQUIRE(cap >= (size_t)(c->n - 1u) * FLT_SA_SHARES_ENTRY, FLT_ERR_NOMEM);
    uint8_t poly_s[32], poly_b[32], pt[FLT_SECAGG_BOX_PT];
    flt_status_t s =
        flt_secagg_derive(c->secret, 32u, "poly", 0u, c->epoch, c->round, 3u, poly_s, 32u);
    if (s == FLT_OK) {
        s = flt_secagg_derive(c->secret, 32u, "poly", 1u, c->epoch, c->round, 3u, poly_b, 32u);
    }
    uint8_t *out = entries;
    for (uint32_t i = 0; i < c->n && s == FLT_OK; ++i) {
        if (i == c->self) {
            continue;
        }
        const uint8_t x = (uint8_t)(i + 1u); /* n <= MAX_COHORT <= 255 */
        const flt_secagg_member_t *m = &c->m[i];
        s = flt_shamir_share(c->mask_sk, 32u, c->t, poly_s, x, pt);
        if (s == FLT_OK) {
            s = flt_shamir_share(c->self_seed, 32u, c->t, poly_b, x, pt + 32);
        }
        if (s == FLT_OK) {
            flt_le_put32(out, m->mask.id);
            s = flt_secagg_box_seal(c->chan[m->chan_slot].chan, c->round, c->device_id, m->mask.id,
                                    pt, out + 4);
        }
        out += FLT_SA_SHARES_ENTRY;
    }
    flt_bytes_zero(poly_s, sizeof poly_s);
    flt_bytes_zero(poly_b, sizeof poly_b);
    flt_bytes_zero(pt, sizeof pt);
    if (s != FLT_OK) {
        wipe_round(c);
        return s;
    }
    *count = (uint16_t)(c->n - 1u);
    return FLT_OK;
}

static uint32_t member_index(const flt_secagg_client_t *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n; ++i) {
        if (c->m[i].mask.id == id) {
            return i;
        }
    }
    return c->n;
}

flt_status_t flt_secagg_receive(flt_secagg_client_t *c, const flt_sa_shares_t *sh)
{
    FLT_REQUIRE(c != NULL && sh != NULL && (sh->entries != NULL || sh->count == 0u), FLT_ERR_ARG);
    FLT_REQUIRE(c->phase == PH_COHORT && sh->round == c->round, FLT_ERR_STATE);
    uint8_t pt[FLT_SECAGG_BOX_PT];
    flt_status_t s = FLT_OK;
    for (uint32_t e = 0; e < sh->count && s == FLT_OK; ++e) {
        const uint8_t *entry = sh->entries + (size_t)e * FLT_SA_SHARES_ENTRY;
        const uint32_t from = flt_le_get32(entry);
        const uint32_t i = member_index(c, from);
        if (i >= c->n || i == c->self) {
            s = FLT_ERR_STATE;
            break;
        }
        flt_secagg_member_t *m = &c->m[i];
        s = flt_secagg_box_open(c->chan[m->chan_slot].chan, c->round, from, c->device_id, entry + 4,
                                pt);
        if (s != FLT_OK) {
            break;
        }
        if (m->has_shares) {
            s = flt_ct_equal(m->shares, pt, sizeof pt) ? FLT_OK : FLT_ERR_DUPLICATE;
        } else {
            flt_bytes_copy(m->shares, pt, sizeof pt);
            m->has_shares = 1u;
        }
    }
    flt_bytes_zero(pt, sizeof pt);
    return s;
}

flt_status_t flt_secagg_mask_input(flt_secagg_client_t *c, uint32_t *values, uint32_t k)
{
    FLT_REQUIRE(c != NULL && values != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(c->phase == PH_COHORT, FLT_ERR_STATE);
    FLT_REQUIRE(k == c->k, FLT_ERR_SHAPE);
    uint32_t held = 0;
    for (uint32_t i = 0; i < c->n; ++i) {
        held += c->m[i].has_shares;
    }
    FLT_REQUIRE(held >= c->t, FLT_ERR_STATE);
    flt_status_t s = flt_secagg_self_mask(c->self_seed, values, k, 1);
    for (uint32_t i = 0; i < c->n && s == FLT_OK; ++i) {
        if (c->m[i].has_shares) { /* public: which peers' shares arrived */
            s = flt_secagg_mask(c->device_id, c->round, &c->m[i].mask, 1u, values, k);
        }
    }
    if (s != FLT_OK) {
        wipe_round(c);
        return s;
    }
    /* nothing after MASKED needs the round's own secrets (the peers' shares rebuild them) */
    flt_bytes_zero(c->self_seed, sizeof c->self_seed);
    flt_bytes_zero(c->mask_sk, sizeof c->mask_sk);
    for (uint32_t i = 0; i < c->n; ++i) {
        flt_bytes_zero(c->m[i].mask.shared, sizeof c->m[i].mask.shared);
    }
    c->phase = PH_MASKED;
    return FLT_OK;
}

flt_status_t flt_secagg_unmask(flt_secagg_client_t *c, const flt_sa_unmask_t *u, uint8_t *entries,
                               size_t cap, uint16_t *count)
{
    FLT_REQUIRE(c != NULL && u != NULL && entries != NULL && count != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(c->phase == PH_MASKED && u->round == c->round, FLT_ERR_STATE);
    FLT_REQUIRE(u->n_surv >= c->t, FLT_ERR_STATE);
    const uint32_t total = (uint32_t)u->n_surv + u->n_drop;
    uint32_t self_listed = 0;
    for (uint32_t e = 0; e < total; ++e) { /* every check before any byte is written */
        const uint32_t id = flt_sa_unmask_id(u, e);
        for (uint32_t f = e + 1u; f < total; ++f) {
            FLT_REQUIRE(flt_sa_unmask_id(u, f) != id, FLT_ERR_STATE); /* both lists */
        }
        if (id == c->device_id) {
            FLT_REQUIRE(e < u->n_surv, FLT_ERR_STATE); /* listed as dropped: reveal nothing */
            self_listed = 1u;
            continue;
        }
        const uint32_t i = member_index(c, id);
        FLT_REQUIRE(i < c->n && c->m[i].has_shares, FLT_ERR_STATE);
    }
    FLT_REQUIRE(self_listed, FLT_ERR_STATE);
    FLT_REQUIRE(cap >= (size_t)(total - 1u) * FLT_SA_REVEAL_ENTRY, FLT_ERR_NOMEM);
    /* members are in id order: walk them, emitting those listed (increasing ids) */
    uint8_t *out = entries;
    uint16_t n_out = 0;
    for (uint32_t i = 0; i < c->n; ++i) {
        const uint32_t id = c->m[i].mask.id;
        if (i == c->self) {
            continue;
        }
        for (uint32_t e = 0; e < total; ++e) {
            if (flt_sa_unmask_id(u, e) == id) {
                const uint8_t kind = (uint8_t)(e < u->n_surv ? FLT_SA_KIND_SELF : FLT_SA_KIND_MASK);
                flt_le_put32(out, id);
                out[4] = kind;
                /* a survivor: the share of its b (bytes 32..63); dropped: of its s (0..31) */
                flt_bytes_copy(out + 5, c->m[i].shares + (kind == FLT_SA_KIND_SELF ? 32u : 0u),
                               32u);
                out += FLT_SA_REVEAL_ENTRY;
                ++n_out;
            }
        }
    }
    *count = n_out;
    wipe_round(c);
    return FLT_OK;
}
