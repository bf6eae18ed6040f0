/* secagg_target.c - a device's secure-aggregation steps (firmware/runtime/secagg/client.h) on a
 * QEMU board (a firmware/bare program), for bench/secagg_cost.py. DEVICES clients (this board
 * simulating its peers too, unmeasured) run two rounds of one session; device 0's steps run
 * between bench markers: the session's first BEGIN (channel and mask key pairs) and its first
 * COHORT (channel and mask secrets with PEERS peers), then a round's BEGIN (mask key pair),
 * COHORT (mask secrets only: the channels are cached), SHARES dealt, SHARES received, the input
 * (index set over PARAMS, quantization of VALUES values, self mask and PEERS pairwise masks)
 * and the UNMASK answer. The server's unmasking runs here too (unmeasured): the round's sum
 * must equal the plain sum of the quantized values, else the program fails.
 *
 * Exit code: 0 ok; 10 + i step i failed. Output line: "secagg target: ok ram=R stack
 * session=.. begin=.. cohort=.. deal=.. receive=.. input=.. unmask=.. baseline=.."
 * with R = sizeof(flt_secagg_client_t) (a device's static RAM for secure aggregation) and the
 * stack high-water mark of each measured step (as crypto_target.c's).
 */
#include <stddef.h>
#include <stdint.h>

#include "bare.h"
#include "core/flt_bytes.h"
#include "crypto/secagg_mask.h"
#include "crypto/x25519.h"
#include "flt_bench.h"
#include "secagg/client.h"
#include "secagg/input.h"
#include "secagg/keys.h"
#include "secagg/msg.h"
#include "secagg/shamir.h"

#define MARK_SESSION 1u /* the session's first BEGIN and COHORT of device 0 */
#define MARK_BEGIN 2u   /* a later round's BEGIN */
#define MARK_COHORT 3u  /* a later round's COHORT */
#define MARK_DEAL 4u    /* flt_secagg_deal */
#define MARK_RECEIVE 5u /* flt_secagg_receive of PEERS boxes */
#define MARK_INPUT 6u   /* index set + quantize + flt_secagg_mask_input */
#define MARK_UNMASK 7u  /* flt_secagg_unmask */
#define DEVICES 5u
#define PEERS (DEVICES - 1u)
#define PARAMS 1030u /* har-tiny's trained parameters */
#define VALUES 256u
#define T 3u

static flt_secagg_client_t dev[DEVICES];
static uint8_t cohort[FLT_SA_COHORT_HEADER + DEVICES * FLT_SA_COHORT_ENTRY];
static uint8_t dealt[DEVICES][PEERS * FLT_SA_SHARES_ENTRY];
static uint8_t relay[PEERS * FLT_SA_SHARES_ENTRY];
static uint8_t reveal[DEVICES][PEERS * FLT_SA_REVEAL_ENTRY];
static uint16_t reveal_n[DEVICES];
static uint32_t y[DEVICES][VALUES], plain[VALUES], idx[VALUES];
static float delta[PARAMS];
static uint32_t hwm[7];

static void report(const char *name, uint32_t v)
{
    flt_bare_write(" ");
    flt_bare_write(name);
    flt_bare_write("=");
    flt_bare_write_u32(v);
}

static int fail(int code, const char *what)
{
    flt_bare_write("secagg target: FAILED ");
    flt_bare_write(what);
    flt_bare_write("\n");
    return code;
}

static uint32_t id_of(uint32_t i)
{
    return 100u + i;
}

static flt_sa_cohort_t g_co;

static int begin_dev(uint32_t i, uint32_t round)
{
    const flt_sa_begin_t b = {1u, round};
    flt_sa_advertise_t adv;
    uint8_t *e = cohort + FLT_SA_COHORT_HEADER + i * FLT_SA_COHORT_ENTRY;
    if (flt_secagg_begin(&dev[i], &b, &adv) != FLT_OK) {
        return 1;
    }
    flt_le_put32(e, id_of(i));
    flt_bytes_copy(e + 4, adv.chan_pk, 32);
    flt_bytes_copy(e + 36, adv.mask_pk, 32);
    return 0;
}

static int make_cohort(uint32_t round) /* the server's COHORT, decoded as a device does */
{
    static uint8_t members[DEVICES * FLT_SA_COHORT_ENTRY];
    flt_bytes_copy(members, cohort + FLT_SA_COHORT_HEADER, sizeof members);
    const flt_sa_cohort_t in = {round, 1u, 99u, VALUES, 1000.0f, 4000u, T, DEVICES, 16u, members};
    size_t len = 0;
    return flt_sa_cohort_encode(&in, cohort, sizeof cohort, &len) != FLT_OK ||
           flt_sa_cohort_decode(cohort, len, &g_co) != FLT_OK;
}

/* BEGIN and COHORT for every device. session: device 0's BEGIN, the COHORT's encoding and
 * decoding (a few thousand instructions) and its COHORT in one interval (MARK_SESSION), the
 * peers' BEGINs before; else device 0's BEGIN (MARK_BEGIN) and COHORT (MARK_COHORT) apart. */
static int setup(uint32_t round, int session)
{
    for (uint32_t i = 1; i < DEVICES; ++i) {
        if (begin_dev(i, round) != 0) {
            return 1;
        }
    }
    flt_bench_stack_paint();
    flt_bench_begin(session ? MARK_SESSION : MARK_BEGIN);
    int bad = begin_dev(0, round);
    if (!session) {
        flt_bench_end(MARK_BEGIN);
        hwm[1] = flt_bench_stack_high_water();
        bad |= make_cohort(round);
        flt_bench_stack_paint();
        flt_bench_begin(MARK_COHORT);
    } else {
        bad |= make_cohort(round);
    }
    bad |= flt_secagg_cohort(&dev[0], &g_co) != FLT_OK;
    flt_bench_end(session ? MARK_SESSION : MARK_COHORT);
    hwm[session ? 0 : 2] = flt_bench_stack_high_water();
    for (uint32_t i = 1; i < DEVICES; ++i) {
        bad |= flt_secagg_cohort(&dev[i], &g_co) != FLT_OK;
    }
    return bad;
}

/* the rest of a round; device 0's steps measured when measure != 0 */
static int finish(uint32_t round, int measure)
{
    uint16_t count = 0;
    for (uint32_t i = 0; i < DEVICES; ++i) {
        flt_status_t s;
        if (i == 0u && measure) {
            flt_bench_stack_paint();
            flt_bench_begin(MARK_DEAL);
            s = flt_secagg_deal(&dev[0], dealt[0], sizeof dealt[0], &count);
            flt_bench_end(MARK_DEAL);
            hwm[3] = flt_bench_stack_high_water();
        } else {
            s = flt_secagg_deal(&dev[i], dealt[i], sizeof dealt[i], &count);
        }
        if (s != FLT_OK || count != PEERS) {
            return 1;
        }
    }
    for (uint32_t to = 0; to < DEVICES; ++to) { /* the server's relay, named by sender */
        uint32_t n = 0;
        for (uint32_t from = 0; from < DEVICES; ++from) {
            for (uint32_t e = 0; e < PEERS && from != to; ++e) {
                const uint8_t *entry = dealt[from] + e * FLT_SA_SHARES_ENTRY;
                if (flt_le_get32(entry) == id_of(to)) {
                    flt_le_put32(relay + n * FLT_SA_SHARES_ENTRY, id_of(from));
                    flt_bytes_copy(relay + n * FLT_SA_SHARES_ENTRY + 4, entry + 4,
                                   FLT_SA_SHARES_ENTRY - 4u);
                    ++n;
                }
            }
        }
        const flt_sa_shares_t sh = {round, (uint16_t)n, relay};
        flt_status_t s;
        if (to == 0u && measure) {
            flt_bench_stack_paint();
            flt_bench_begin(MARK_RECEIVE);
            s = flt_secagg_receive(&dev[0], &sh);
            flt_bench_end(MARK_RECEIVE);
            hwm[4] = flt_bench_stack_high_water();
        } else {
            s = flt_secagg_receive(&dev[to], &sh);
        }
        if (s != FLT_OK) {
            return 1;
        }
    }
    flt_bytes_zero(plain, sizeof plain);
    for (uint32_t i = 0; i < DEVICES; ++i) {
        for (uint32_t j = 0; j < PARAMS; ++j) {
            delta[j] = (float)((int32_t)((i * 7u + j * 13u) % 201u) - 100) * 0.01f;
        }
        flt_status_t s;
        if (i == 0u && measure) {
            flt_bench_stack_paint();
            flt_bench_begin(MARK_INPUT);
            s = flt_secagg_index_set(99u, round, PARAMS, VALUES, idx);
            if (s == FLT_OK) {
                s = flt_secagg_quantize(delta, PARAMS, idx, VALUES, 1000.0f, 4000u, y[0]);
            }
            if (s == FLT_OK) {
                s = flt_secagg_mask_input(&dev[0], y[0], VALUES);
            }
            flt_bench_end(MARK_INPUT);
            hwm[5] = flt_bench_stack_high_water();
        } else {
            s = flt_secagg_index_set(99u, round, PARAMS, VALUES, idx);
            if (s == FLT_OK) {
                s = flt_secagg_quantize(delta, PARAMS, idx, VALUES, 1000.0f, 4000u, y[i]);
            }
            for (uint32_t j = 0; j < VALUES && s == FLT_OK; ++j) {
                plain[j] += y[i][j]; /* before masking: the plain sum, mod 2^32 */
            }
            if (s == FLT_OK) {
                s = flt_secagg_mask_input(&dev[i], y[i], VALUES);
            }
        }
        if (i == 0u && measure) { /* device 0's plain values, rebuilt after the measurement */
            uint32_t q[VALUES];
            s = s == FLT_OK ? flt_secagg_quantize(delta, PARAMS, idx, VALUES, 1000.0f, 4000u, q)
                            : s;
            for (uint32_t j = 0; j < VALUES; ++j) {
                plain[j] += q[j];
            }
        }
        if (s != FLT_OK) {
            return 1;
        }
    }
    uint8_t um[8 + 4 * DEVICES];
    flt_le_put32(um, round);
    flt_le_put16(um + 4, DEVICES);
    flt_le_put16(um + 6, 0);
    for (uint32_t i = 0; i < DEVICES; ++i) {
        flt_le_put32(um + 8 + 4 * i, id_of(i));
    }
    flt_sa_unmask_t u;
    if (flt_sa_unmask_decode(um, sizeof um, &u) != FLT_OK) {
        return 1;
    }
    for (uint32_t i = 0; i < DEVICES; ++i) {
        flt_status_t s;
        if (i == 0u && measure) {
            flt_bench_stack_paint();
            flt_bench_begin(MARK_UNMASK);
            s = flt_secagg_unmask(&dev[0], &u, reveal[0], sizeof reveal[0], &reveal_n[0]);
            flt_bench_end(MARK_UNMASK);
            hwm[6] = flt_bench_stack_high_water();
        } else {
            s = flt_secagg_unmask(&dev[i], &u, reveal[i], sizeof reveal[i], &reveal_n[i]);
        }
        if (s != FLT_OK || reveal_n[i] != PEERS) {
            return 1;
        }
    }
    /* the server: sum the masked inputs, remove each self mask rebuilt from T shares */
    uint32_t sum[VALUES] = {0};
    for (uint32_t v = 0; v < DEVICES; ++v) {
        uint8_t xs[T], shares[T * 32], b[32];
        uint32_t got = 0;
        for (uint32_t r = 0; r < DEVICES && got < T; ++r) {
            for (uint32_t e = 0; e < reveal_n[r] && r != v && got < T; ++e) {
                const uint8_t *p = reveal[r] + e * FLT_SA_REVEAL_ENTRY;
                if (flt_le_get32(p) == id_of(v)) {
                    xs[got] = (uint8_t)(r + 1u);
                    flt_bytes_copy(shares + 32u * got, p + 5, 32);
                    ++got;
                }
            }
        }
        if (got != T || flt_shamir_recover(xs, shares, T, 32, b) != FLT_OK ||
            flt_secagg_self_mask(b, y[v], VALUES, 0) != FLT_OK) {
            return 1;
        }
        for (uint32_t j = 0; j < VALUES; ++j) {
            sum[j] += y[v][j];
        }
    }
    uint32_t diff = 0;
    for (uint32_t j = 0; j < VALUES; ++j) {
        diff |= (sum[j] ^ plain[j]) & 0xFFFFu;
    }
    return diff != 0u;
}

int flt_bare_main(void)
{
    for (uint32_t i = 0; i < DEVICES; ++i) {
        uint8_t secret[32];
        for (uint32_t b = 0; b < 32; ++b) {
            secret[b] = (uint8_t)(31u * i + 7u * b + 1u);
        }
        if (flt_secagg_client_init(&dev[i], id_of(i), secret) != FLT_OK) {
            return fail(10, "init");
        }
    }
    flt_bench_stack_paint();
    const uint32_t baseline = flt_bench_stack_high_water();
    flt_bench_begin(FLT_BENCH_CALIBRATE);
    flt_bench_end(FLT_BENCH_CALIBRATE);
    if (setup(1u, 1) != 0) {
        return fail(11, "round 1 keys");
    }
    if (finish(1u, 0) != 0) {
        return fail(12, "round 1 sum");
    }
    if (setup(2u, 0) != 0) {
        return fail(13, "round 2 keys");
    }
    if (finish(2u, 1) != 0) {
        return fail(14, "round 2 sum");
    }
    flt_bare_write("secagg target: ok");
    report("ram", (uint32_t)sizeof(flt_secagg_client_t));
    flt_bare_write(" stack");
    static const char *const names[7] = {"session", "begin", "cohort", "deal",
                                         "receive", "input", "unmask"};
    for (uint32_t i = 0; i < 7u; ++i) {
        report(names[i], hwm[i]);
    }
    report("baseline", baseline);
    flt_bare_write("\n");
    return 0;
}
