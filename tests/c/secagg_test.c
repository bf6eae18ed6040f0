/* secagg_test.c - C unit test of secure aggregation (firmware/runtime/secagg), built under
 * ASan + UBSan by tests/test_secagg_protocol.py. Checks GF(2^8) against a branchy reference
 * multiplication on all 65,536 pairs, Shamir recovery from every t-subset (and that t - 1
 * shares do not give the secret), the share box (round trip, every flipped byte refused, the
 * other direction refused), the index set and the quantizer, every status of the message
 * decoders in wire order, and whole rounds of N C clients, the server's unmasking done here in
 * C too: no dropout, one device dropping before MASKED and two after it (the sum equals the
 * plain sum of the quantized values exactly), and every refusal of client.h (replayed BEGIN,
 * COHORT without this device, a tampered or foreign box, MASKED before t shares, UNMASK
 * naming this device dropped, too few survivors, a second UNMASK). Prints one line per failed
 * check and "secagg_test: N checks, F failed"; exit 0 iff F == 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/flt_bits.h"
#include "core/flt_bytes.h"
#include "crypto/secagg_mask.h"
#include "crypto/x25519.h"
#include "secagg/box.h"
#include "secagg/client.h"
#include "secagg/input.h"
#include "secagg/keys.h"
#include "secagg/msg.h"
#include "secagg/shamir.h"

static uint8_t ref_mul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    while (b) {
        if (b & 1u) {
            r ^= a;
        }
        const unsigned wide = (unsigned)a << 1;
        a = (uint8_t)((a & 0x80u) ? (wide ^ 0x1Bu) : wide);
        b >>= 1;
    }
    return r;
}

static void test_gf(void)
{
    int bad = 0;
    for (unsigned a = 0; a < 256u; ++a) {
        for (unsigned b = 0; b < 256u; ++b) {
            bad += flt_gf256_mul((uint8_t)a, (uint8_t)b) != ref_mul((uint8_t)a, (uint8_t)b);
        }
        if (a > 0u) {
            bad += flt_gf256_mul((uint8_t)a, flt_gf256_inv((uint8_t)a)) != 1u;
        }
    }
    CHECK(bad == 0);
    CHECK(flt_gf256_inv(0) == 0u);
    CHECK(flt_gf256_mul(0x57, 0x83) == 0xC1); /* FIPS 197 section 4.2 */
}

static void test_shamir(void)
{
    uint8_t secret[32], key[32], shares[8][32], out[32];
    for (int i = 0; i < 32; ++i) {
        secret[i] = (uint8_t)(7 * i + 3);
        key[i] = (uint8_t)(255 - i);
    }
    const uint32_t t = 3;
    for (uint8_t x = 1; x <= 8; ++x) {
        CHECK(flt_shamir_share(secret, 32, t, key, x, shares[x - 1]) == FLT_OK);
    }
    int ok = 1;
    for (uint8_t a = 1; a <= 8; ++a) { /* every 3-subset of the 8 shares */
        for (uint8_t b = (uint8_t)(a + 1); b <= 8; ++b) {
            for (uint8_t c = (uint8_t)(b + 1); c <= 8; ++c) {
                uint8_t xs[3] = {a, b, c}, buf[96];
                memcpy(buf, shares[a - 1], 32);
                memcpy(buf + 32, shares[b - 1], 32);
                memcpy(buf + 64, shares[c - 1], 32);
                ok &= flt_shamir_recover(xs, buf, 3, 32, out) == FLT_OK &&
                      memcmp(out, secret, 32) == 0;
            }
        }
    }
    CHECK(ok);
    uint8_t xs2[2] = {1, 2}, buf2[64];
    memcpy(buf2, shares[0], 32);
    memcpy(buf2 + 32, shares[1], 32);
    CHECK(flt_shamir_recover(xs2, buf2, 2, 32, out) == FLT_OK && memcmp(out, secret, 32) != 0);
    /* t = 1: every share is the secret */
    CHECK(flt_shamir_share(secret, 32, 1, key, 9, out) == FLT_OK && memcmp(out, secret, 32) == 0);
    uint8_t dup[2] = {4, 4}, zero[2] = {0, 4};
    CHECK(flt_shamir_recover(dup, buf2, 2, 32, out) == FLT_ERR_ARG);
    CHECK(flt_shamir_recover(zero, buf2, 2, 32, out) == FLT_ERR_ARG);
    CHECK(flt_shamir_share(secret, 32, t, key, 0, out) == FLT_ERR_ARG);
    CHECK(flt_shamir_share(secret, 0, t, key, 1, out) == FLT_ERR_ARG);
    CHECK(flt_shamir_share(secret, 65, t, key, 1, out) == FLT_ERR_ARG);
    CHECK(flt_shamir_share(secret, 32, 0, key, 1, out) == FLT_ERR_ARG);
}

static void test_box(void)
{
    uint8_t chan[32], pt[64], box[FLT_SECAGG_BOX_SIZE], back[64];
    for (int i = 0; i < 64; ++i) {
        pt[i] = (uint8_t)i;
        if (i < 32) {
            chan[i] = (uint8_t)(i * 3);
        }
    }
    CHECK(flt_secagg_box_seal(chan, 5, 1, 2, pt, box) == FLT_OK);
    CHECK(memcmp(box, pt, 64) != 0);
    CHECK(flt_secagg_box_open(chan, 5, 1, 2, box, back) == FLT_OK && memcmp(back, pt, 64) == 0);
    int refused = 1;
    for (size_t i = 0; i < sizeof box; ++i) {
        box[i] ^= 0x10u;
        refused &= flt_secagg_box_open(chan, 5, 1, 2, box, back) == FLT_ERR_AUTH;
        box[i] ^= 0x10u;
    }
    CHECK(refused);
    CHECK(flt_secagg_box_open(chan, 5, 2, 1, box, back) == FLT_ERR_AUTH); /* other direction */
    CHECK(flt_secagg_box_open(chan, 6, 1, 2, box, back) == FLT_ERR_AUTH); /* other round */
    CHECK(flt_secagg_box_seal(chan, 5, 3, 3, pt, box) == FLT_ERR_ARG);
}

static void test_input(void)
{
    uint32_t idx[100];
    CHECK(flt_secagg_index_set(9, 1, 1000, 100, idx) == FLT_OK);
    int sorted = 1;
    for (int i = 1; i < 100; ++i) {
        sorted &= idx[i] > idx[i - 1];
    }
    CHECK(sorted && idx[99] < 1000u);
    uint32_t again[100], other[100];
    CHECK(flt_secagg_index_set(9, 1, 1000, 100, again) == FLT_OK && !memcmp(idx, again, 400));
    CHECK(flt_secagg_index_set(9, 2, 1000, 100, other) == FLT_OK && memcmp(idx, other, 400));
    CHECK(flt_secagg_index_set(1, 1, 7, 7, idx) == FLT_OK && idx[0] == 0 && idx[6] == 6);
    CHECK(flt_secagg_index_set(1, 1, 7, 8, idx) == FLT_ERR_RANGE);
    CHECK(flt_secagg_index_set(1, 1, 7, 0, idx) == FLT_ERR_RANGE);
    float delta[6] = {0.25f, -0.25f, 10.0f, -10.0f, 0.0f, 0.124f};
    delta[4] = flt_f32_from_bits(0x7FC00000u); /* NaN */
    const uint32_t all[6] = {0, 1, 2, 3, 4, 5};
    uint32_t q[6];
    CHECK(flt_secagg_quantize(delta, 6, all, 6, 10.0f, 50, q) == FLT_OK);
    CHECK((int32_t)q[0] == 3 && (int32_t)q[1] == -3 && (int32_t)q[2] == 50 &&
          (int32_t)q[3] == -50 && q[4] == 0u && (int32_t)q[5] == 1);
    const uint32_t out_of_range[1] = {6};
    CHECK(flt_secagg_quantize(delta, 6, out_of_range, 1, 1.0f, 50, q) == FLT_ERR_RANGE);
    CHECK(flt_secagg_quantize(delta, 6, all, 6, 0.0f, 50, q) == FLT_ERR_RANGE);
    CHECK(flt_secagg_quantize(delta, 6, all, 6, 1.0f, (1u << 24) + 1u, q) == FLT_ERR_RANGE);
}

static void put32(uint8_t *p, uint32_t v)
{
    flt_le_put32(p, v);
}

static void test_msg(void)
{
    uint8_t b[64] = {0};
    flt_sa_begin_t bg;
    CHECK(flt_sa_begin_decode(b, 7, &bg) == FLT_ERR_TRUNCATED);
    CHECK(flt_sa_begin_decode(b, 9, &bg) == FLT_ERR_FORMAT);
    flt_sa_advertise_t ad;
    CHECK(flt_sa_advertise_decode(b, 71, &ad) == FLT_ERR_TRUNCATED);
    /* COHORT: header checks in wire order */
    uint8_t co[32 + 2 * 68] = {0};
    put32(co, 1);
    put32(co + 12, 10);              /* k */
    flt_le_put_f32(co + 16, 100.0f); /* scale */
    put32(co + 20, 1000);            /* qmax */
    flt_le_put16(co + 24, 1);        /* t */
    flt_le_put16(co + 26, 2);        /* n */
    co[28] = 16;                     /* w */
    put32(co + 32, 5);               /* ids 5, 9 */
    put32(co + 32 + 68, 9);
    flt_sa_cohort_t c;
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_OK && c.n == 2 && c.k == 10);
    CHECK(flt_sa_cohort_id(&c, 1) == 9u);
    CHECK(flt_sa_cohort_decode(co, 31, &c) == FLT_ERR_TRUNCATED);
    CHECK(flt_sa_cohort_decode(co, sizeof co - 1, &c) == FLT_ERR_TRUNCATED);
    co[30] = 1;
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_FORMAT);
    co[30] = 0;
    co[28] = 12;
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_UNSUPPORTED);
    co[28] = 16;
    flt_le_put32(co + 16, 0x7FC00000u); /* NaN */
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_NONFINITE);
    flt_le_put_f32(co + 16, -1.0f);
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_RANGE);
    flt_le_put_f32(co + 16, 100.0f);
    flt_le_put16(co + 24, 2); /* t = n */
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_RANGE);
    flt_le_put16(co + 24, 1);
    put32(co + 20, 16384); /* 2 * 16384 = 2^15: the sum could wrap */
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_RANGE);
    put32(co + 20, 16383);
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_OK);
    put32(co + 32 + 68, 5); /* ids not increasing */
    CHECK(flt_sa_cohort_decode(co, sizeof co, &c) == FLT_ERR_FORMAT);
    put32(co + 32 + 68, 9);
    uint8_t enc[sizeof co];
    size_t len = 0;
    CHECK(flt_sa_cohort_encode(&c, enc, sizeof enc, &len) == FLT_OK && len == sizeof co &&
          memcmp(enc, co, len) == 0);
    CHECK(flt_sa_cohort_encode(&c, enc, sizeof enc - 1, &len) == FLT_ERR_NOMEM);
    /* MASKED */
    const uint32_t vals[3] = {0x12345u, 0xFFFFFFFFu, 7u};
    uint8_t m[12 + 12];
    CHECK(flt_sa_masked_encode(4, 16, vals, 3, m, sizeof m, &len) == FLT_OK && len == 18u);
    flt_sa_masked_t mk;
    CHECK(flt_sa_masked_decode(m, len, &mk) == FLT_OK && mk.k == 3u &&
          flt_sa_masked_value(&mk, 0) == 0x2345u && flt_sa_masked_value(&mk, 1) == 0xFFFFu);
    CHECK(flt_sa_masked_decode(m, len - 1, &mk) == FLT_ERR_TRUNCATED);
    CHECK(flt_sa_masked_decode(m, len + 1, &mk) == FLT_ERR_FORMAT);
    CHECK(flt_sa_masked_encode(4, 12, vals, 3, m, sizeof m, &len) == FLT_ERR_UNSUPPORTED);
    CHECK(flt_sa_masked_encode(4, 8, vals, 3, m, sizeof m, &len) == FLT_OK && len == 15u);
    CHECK(flt_sa_masked_decode(m, len, &mk) == FLT_OK && flt_sa_masked_value(&mk, 0) == 0x45u &&
          flt_sa_masked_value(&mk, 1) == 0xFFu);
    /* UNMASK: disjoint, increasing lists */
    uint8_t um[8 + 12];
    put32(um, 4);
    flt_le_put16(um + 4, 2);
    flt_le_put16(um + 6, 1);
    put32(um + 8, 3);
    put32(um + 12, 7);
    put32(um + 16, 5);
    flt_sa_unmask_t u;
    CHECK(flt_sa_unmask_decode(um, sizeof um, &u) == FLT_OK && flt_sa_unmask_id(&u, 2) == 5u);
    put32(um + 16, 7);
    CHECK(flt_sa_unmask_decode(um, sizeof um, &u) == FLT_ERR_FORMAT);
    flt_le_put16(um + 4, 0);
    CHECK(flt_sa_unmask_decode(um, sizeof um, &u) == FLT_ERR_RANGE);
    /* REVEAL: kind 0 or 1 */
    uint8_t rv[8 + 37] = {0};
    flt_le_put16(rv + 4, 1);
    rv[12] = 2;
    flt_sa_reveal_t r;
    CHECK(flt_sa_reveal_decode(rv, sizeof rv, &r) == FLT_ERR_FORMAT);
    rv[12] = 1;
    CHECK(flt_sa_reveal_decode(rv, sizeof rv, &r) == FLT_OK && r.count == 1u);
    flt_sa_shares_t sh;
    uint8_t shm[8] = {0};
    flt_le_put16(shm + 4, FLT_SECAGG_MAX_COHORT);
    CHECK(flt_sa_shares_decode(shm, sizeof shm, &sh) == FLT_ERR_RANGE);
}

/* ---- whole rounds -------------------------------------------------------------------- */

#define N 7u
#define K 40u
#define T 4u

static flt_secagg_client_t g_dev[N];
static uint8_t g_cohort[FLT_SA_COHORT_HEADER + N * FLT_SA_COHORT_ENTRY];
static uint8_t g_shares[N][FLT_SA_SHARES_HEADER + N * FLT_SA_SHARES_ENTRY];
static uint8_t g_boxes[N][N][FLT_SECAGG_BOX_SIZE]; /* [to][from] */
static uint32_t g_y[N][K], g_q[N][K];
static uint8_t g_reveal[N][N * FLT_SA_REVEAL_ENTRY];
static uint16_t g_reveal_n[N];

static uint32_t dev_id(uint32_t i)
{
    return 10u + 3u * i;
}

static size_t setup_round(uint32_t epoch, uint32_t round)
{
    flt_sa_begin_t b = {epoch, round};
    uint8_t *e = g_cohort + FLT_SA_COHORT_HEADER;
    for (uint32_t i = 0; i < N; ++i) {
        flt_sa_advertise_t adv;
        CHECK(flt_secagg_begin(&g_dev[i], &b, &adv) == FLT_OK);
        put32(e + i * FLT_SA_COHORT_ENTRY, dev_id(i));
        memcpy(e + i * FLT_SA_COHORT_ENTRY + 4, adv.chan_pk, 32);
        memcpy(e + i * FLT_SA_COHORT_ENTRY + 36, adv.mask_pk, 32);
    }
    flt_sa_cohort_t co = {round, epoch, 77u, K, 1000.0f, 1000u, T, N, 16u, e};
    size_t len = 0;
    CHECK(flt_sa_cohort_encode(&co, g_cohort, sizeof g_cohort, &len) == FLT_OK);
    return len;
}

static void deal_all(size_t cohort_len, uint32_t round)
{
    flt_sa_cohort_t co;
    CHECK(flt_sa_cohort_decode(g_cohort, cohort_len, &co) == FLT_OK);
    for (uint32_t i = 0; i < N; ++i) {
        CHECK(flt_secagg_cohort(&g_dev[i], &co) == FLT_OK);
        uint8_t entries[N * FLT_SA_SHARES_ENTRY];
        uint16_t count = 0;
        CHECK(flt_secagg_deal(&g_dev[i], entries, sizeof entries, &count) == FLT_OK);
        CHECK(count == N - 1u);
        for (uint32_t e = 0; e < count; ++e) {
            const uint32_t to = (flt_le_get32(entries + e * FLT_SA_SHARES_ENTRY) - 10u) / 3u;
            memcpy(g_boxes[to][i], entries + e * FLT_SA_SHARES_ENTRY + 4, FLT_SECAGG_BOX_SIZE);
        }
    }
    for (uint32_t to = 0; to < N; ++to) { /* the server's relay: boxes named by sender */
        uint8_t entries[N * FLT_SA_SHARES_ENTRY];
        uint16_t count = 0;
        for (uint32_t from = 0; from < N; ++from) {
            if (from != to) {
                put32(entries + count * FLT_SA_SHARES_ENTRY, dev_id(from));
                memcpy(entries + count * FLT_SA_SHARES_ENTRY + 4, g_boxes[to][from],
                       FLT_SECAGG_BOX_SIZE);
                ++count;
            }
        }
        flt_sa_shares_t sh = {round, count, entries};
        size_t len = 0;
        CHECK(flt_sa_shares_encode(&sh, g_shares[to], sizeof g_shares[to], &len) == FLT_OK);
        flt_sa_shares_t in;
        CHECK(flt_sa_shares_decode(g_shares[to], len, &in) == FLT_OK);
        CHECK(flt_secagg_receive(&g_dev[to], &in) == FLT_OK);
        CHECK(flt_secagg_receive(&g_dev[to], &in) == FLT_OK); /* the same boxes again: fine */
    }
}

/* the server's unmasking, in C: rebuild each secret from T shares of the responders */
static int recover(uint32_t owner, uint8_t kind, const int *responds, uint8_t out[32])
{
    uint8_t xs[T], shares[T * 32];
    uint32_t got = 0;
    for (uint32_t r = 0; r < N && got < T; ++r) {
        if (!responds[r] || r == owner) {
            continue;
        }
        for (uint32_t e = 0; e < g_reveal_n[r]; ++e) {
            const uint8_t *p = g_reveal[r] + e * FLT_SA_REVEAL_ENTRY;
            if (flt_le_get32(p) == dev_id(owner) && p[4] == kind) {
                xs[got] = (uint8_t)(r + 1u);
                memcpy(shares + got * 32, p + 5, 32);
                ++got;
            }
        }
    }
    return got == T && flt_shamir_recover(xs, shares, T, 32, out) == FLT_OK;
}

/* dropped_before: no MASKED; dropped_after: MASKED but no REVEAL */
static void run_round(uint32_t epoch, uint32_t round, const int *dropped_before,
                      const int *dropped_after)
{
    deal_all(setup_round(epoch, round), round);
    int masked[N], responds[N];
    uint8_t um[8 + 4 * N];
    uint16_t ns = 0, nd = 0;
    uint32_t surv[N], drop[N];
    for (uint32_t i = 0; i < N; ++i) {
        masked[i] = !dropped_before[i];
        responds[i] = masked[i] && !dropped_after[i];
        for (uint32_t j = 0; j < K; ++j) {
            g_q[i][j] = (uint32_t)((int32_t)(i * 37u + j * 11u) % 1000 - 500);
            g_y[i][j] = g_q[i][j];
        }
        if (masked[i]) {
            CHECK(flt_secagg_mask_input(&g_dev[i], g_y[i], K) == FLT_OK);
            surv[ns++] = dev_id(i);
        } else {
            drop[nd++] = dev_id(i);
        }
    }
    put32(um, round);
    flt_le_put16(um + 4, ns);
    flt_le_put16(um + 6, nd);
    for (uint32_t i = 0; i < ns; ++i) {
        put32(um + 8 + 4 * i, surv[i]);
    }
    for (uint32_t i = 0; i < nd; ++i) {
        put32(um + 8 + 4 * (ns + i), drop[i]);
    }
    flt_sa_unmask_t u;
    CHECK(flt_sa_unmask_decode(um, 8u + 4u * (ns + nd), &u) == FLT_OK);
    for (uint32_t i = 0; i < N; ++i) {
        if (responds[i]) {
            CHECK(flt_secagg_unmask(&g_dev[i], &u, g_reveal[i], sizeof g_reveal[i],
                                    &g_reveal_n[i]) == FLT_OK);
            CHECK(g_reveal_n[i] == ns + nd - 1u);
            uint16_t again = 0;
            CHECK(flt_secagg_unmask(&g_dev[i], &u, g_reveal[i], sizeof g_reveal[i], &again) ==
                  FLT_ERR_STATE);
        }
    }
    uint32_t sum[K] = {0}, plain[K] = {0};
    for (uint32_t i = 0; i < N; ++i) {
        if (!masked[i]) {
            continue;
        }
        uint8_t b[32];
        CHECK(recover(i, FLT_SA_KIND_SELF, responds, b));
        uint32_t neg[K] = {0};
        CHECK(flt_secagg_self_mask(b, neg, K, 0) == FLT_OK);
        for (uint32_t j = 0; j < K; ++j) {
            sum[j] += g_y[i][j] + neg[j];
            plain[j] += g_q[i][j];
        }
    }
    for (uint32_t d = 0; d < N; ++d) {
        if (masked[d]) {
            continue;
        }
        uint8_t s[32], pk[32];
        CHECK(recover(d, FLT_SA_KIND_MASK, responds, s));
        flt_x25519_public(pk, s);
        CHECK(memcmp(pk, g_dev[d].mask_pk, 32) == 0);
        for (uint32_t v = 0; v < N; ++v) {
            if (masked[v]) {
                flt_secagg_peer_t p;
                p.id = dev_id(v);
                CHECK(flt_x25519_shared(p.shared, s, g_dev[v].mask_pk) == FLT_OK);
                CHECK(flt_secagg_mask(dev_id(d), round, &p, 1, sum, K) == FLT_OK);
            }
        }
    }
    int equal = 1, masked_differs = 0;
    for (uint32_t j = 0; j < K; ++j) {
        equal &= (sum[j] & 0xFFFFu) == (plain[j] & 0xFFFFu);
        masked_differs += g_y[0][j] != g_q[0][j];
    }
    CHECK(equal);
    CHECK(masked_differs >= (int)K - 1);
}

static void test_rounds(void)
{
    uint8_t secret[32];
    for (uint32_t i = 0; i < N; ++i) {
        for (int b = 0; b < 32; ++b) {
            secret[b] = (uint8_t)(i * 31u + (uint32_t)b);
        }
        CHECK(flt_secagg_client_init(&g_dev[i], dev_id(i), secret) == FLT_OK);
    }
    const int none[N] = {0};
    const int before[N] = {0, 0, 1, 0, 0, 0, 0};
    const int after[N] = {0, 0, 0, 0, 1, 0, 0};
    const int two[N] = {0, 0, 0, 0, 1, 0, 1};
    run_round(1, 1, none, none);
    run_round(1, 2, before, after); /* 1 of 7 before MASKED, 1 after (t = 4): still decodes */
    run_round(2, 1, two, none);     /* a new session; two drop before MASKED */
    run_round(2, 2, none, two);     /* two drop after MASKED */

    /* refusals */
    flt_sa_begin_t old = {2, 1};
    flt_sa_advertise_t adv;
    CHECK(flt_secagg_begin(&g_dev[0], &old, &adv) == FLT_ERR_REPLAY);
    flt_sa_begin_t older_epoch = {1, 9};
    CHECK(flt_secagg_begin(&g_dev[0], &older_epoch, &adv) == FLT_ERR_REPLAY);
    const size_t len = setup_round(2, 3);
    flt_sa_cohort_t co;
    CHECK(flt_sa_cohort_decode(g_cohort, len, &co) == FLT_OK);
    flt_secagg_client_t stranger;
    uint8_t other[32] = {9};
    CHECK(flt_secagg_client_init(&stranger, 999u, other) == FLT_OK);
    flt_sa_begin_t b22 = {2, 3};
    CHECK(flt_secagg_begin(&stranger, &b22, &adv) == FLT_OK);
    CHECK(flt_secagg_cohort(&stranger, &co) == FLT_ERR_STATE); /* not in the cohort */
    for (uint32_t i = 0; i < N; ++i) {
        CHECK(flt_secagg_cohort(&g_dev[i], &co) == FLT_OK);
    }
    uint32_t y[K] = {0};
    CHECK(flt_secagg_mask_input(&g_dev[0], y, K) == FLT_ERR_STATE); /* no shares yet */
    CHECK(flt_secagg_mask_input(&g_dev[0], y, K - 1u) == FLT_ERR_SHAPE);
    uint8_t entries[N * FLT_SA_SHARES_ENTRY];
    uint16_t count = 0;
    CHECK(flt_secagg_deal(&g_dev[1], entries, sizeof entries, &count) == FLT_OK);
    uint8_t relay[FLT_SA_SHARES_ENTRY];
    put32(relay, dev_id(1));
    memcpy(relay + 4, entries + 4, FLT_SECAGG_BOX_SIZE); /* device 1's box for device 0 */
    flt_sa_shares_t sh = {3, 1, relay};
    relay[10] ^= 1u;
    CHECK(flt_secagg_receive(&g_dev[0], &sh) == FLT_ERR_AUTH);
    relay[10] ^= 1u;
    put32(relay, dev_id(2)); /* claimed to come from another peer */
    CHECK(flt_secagg_receive(&g_dev[0], &sh) == FLT_ERR_AUTH);
    put32(relay, 999u);
    CHECK(flt_secagg_receive(&g_dev[0], &sh) == FLT_ERR_STATE);
    /* device 0 gets shares from every peer, masks, then is asked badly */
    for (uint32_t from = 1; from < N; ++from) {
        CHECK(flt_secagg_deal(&g_dev[from], entries, sizeof entries, &count) == FLT_OK);
        put32(relay, dev_id(from));
        memcpy(relay + 4, entries + 4, FLT_SECAGG_BOX_SIZE); /* entry 0: for device 0 */
        CHECK(flt_secagg_receive(&g_dev[0], &sh) == FLT_OK);
    }
    CHECK(flt_secagg_mask_input(&g_dev[0], y, K) == FLT_OK);
    CHECK(flt_secagg_mask_input(&g_dev[0], y, K) == FLT_ERR_STATE); /* once per round */
    uint8_t um[8 + 4 * N], rv[N * FLT_SA_REVEAL_ENTRY];
    flt_sa_unmask_t u;
    uint16_t nrv = 0;
    /* this device listed as dropped */
    put32(um, 3);
    flt_le_put16(um + 4, 4);
    flt_le_put16(um + 6, 1);
    for (uint32_t i = 0; i < 5; ++i) {
        put32(um + 8 + 4 * i, dev_id(i + 1u));
    }
    put32(um + 8 + 16, dev_id(0)); /* survivors 13..22, dropped: this device (10) */
    CHECK(flt_sa_unmask_decode(um, 8 + 20, &u) == FLT_OK);
    CHECK(flt_secagg_unmask(&g_dev[0], &u, rv, sizeof rv, &nrv) == FLT_ERR_STATE);
    /* too few survivors (t = 4) */
    flt_le_put16(um + 4, 3);
    flt_le_put16(um + 6, 0);
    put32(um + 8, dev_id(0));
    put32(um + 12, dev_id(1));
    put32(um + 16, dev_id(2));
    CHECK(flt_sa_unmask_decode(um, 8 + 12, &u) == FLT_OK);
    CHECK(flt_secagg_unmask(&g_dev[0], &u, rv, sizeof rv, &nrv) == FLT_ERR_STATE);
    /* a correct one still works after the refusals */
    flt_le_put16(um + 4, 4);
    put32(um + 20, dev_id(3));
    CHECK(flt_sa_unmask_decode(um, 8 + 16, &u) == FLT_OK);
    CHECK(flt_secagg_unmask(&g_dev[0], &u, rv, 10, &nrv) == FLT_ERR_NOMEM);
    CHECK(flt_secagg_unmask(&g_dev[0], &u, rv, sizeof rv, &nrv) == FLT_OK && nrv == 3u);
    for (uint32_t i = 0; i < N; ++i) {
        flt_secagg_client_wipe(&g_dev[i]);
    }
    uint8_t zero[sizeof g_dev[0]] = {0};
    CHECK(memcmp(&g_dev[0], zero, sizeof zero) == 0);
}

int main(void)
{
    test_gf();
    test_shamir();
    test_box();
    test_input();
    test_msg();
    test_rounds();
    return check_report("secagg_test");
}
