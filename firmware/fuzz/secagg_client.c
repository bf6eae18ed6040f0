/* secagg_client.c - libFuzzer harness of a device's secure-aggregation state machine
 * (secagg/client.c) driven by the host's messages (decoded by secagg/msg.c).
 *
 * Feeds: a client with id FUZZ_DEVICE_ID and a fixed device secret after BEGIN(epoch 1, round
 * 1) (the state is made once and copied per input), then up to 8 operations, each a byte (modulo 5)
 * and its fields: 0 BEGIN   epoch u8, round u8 1 COHORT  n (2 + u8 % 2), then the payload's fixed
 * part (32 bytes) and n x 68 bytes of members; a u8 p < n then, when its bit 7 is clear, makes
 * member p this device (its id and the keys it advertised, ids patched to stay increasing) 2 SHARES
 * u16 length and that many payload bytes; a u8 whose bit 0 set replaces the first entry's box with
 * one sealed by the claimed sender's channel secret (so boxes that open are reached too) 3 MASKED
 * u8 k; k values u32 4 UNMASK  u16 length and that many payload bytes Asserts, beyond memory
 * safety:
 * - every status is one client.h or msg.h lists for that step;
 * - a successful UNMASK reveals at most n - 1 shares, as a valid REVEAL (ids strictly
 *   increasing, so one share per device: never both kinds for one peer), and only once per
 *   round: a second UNMASK of the round is refused; a successful MASKED happens once per round.
 * Cohorts are kept to 2-3 members: each member costs two X25519.
 */
#include "core/flt_bytes.h"
#include "fuzz.h"
#include "secagg/box.h"
#include "secagg/client.h"
#include "secagg/msg.h"

static flt_secagg_client_t g_c, g_base; /* g_base: after init and BEGIN(1, 1), made once */
static flt_sa_advertise_t g_adv;
static int g_ready;

static int ok_status(flt_status_t s)
{
    return s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
           s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_NONFINITE || s == FLT_ERR_RANGE ||
           s == FLT_ERR_STATE || s == FLT_ERR_REPLAY || s == FLT_ERR_AUTH ||
           s == FLT_ERR_DUPLICATE || s == FLT_ERR_SHAPE || s == FLT_ERR_ARG || s == FLT_ERR_NOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[32] = FUZZ_KEY;
    fuzz_in_t in = fuzz_in(data, size);
    flt_sa_begin_t b = {1u, 1u};
    if (!g_ready) { /* a pure function of the fixed secret: the same state for every input */
        FUZZ_ASSERT(flt_secagg_client_init(&g_base, FUZZ_DEVICE_ID, secret) == FLT_OK);
        FUZZ_ASSERT(flt_secagg_begin(&g_base, &b, &g_adv) == FLT_OK);
        g_ready = 1;
    }
    g_c = g_base;
    flt_sa_advertise_t adv = g_adv;
    int masked = 0, unmasked = 0, begun = 0;
    uint8_t buf[FLT_SA_COHORT_HEADER + 3u * FLT_SA_COHORT_ENTRY];
    uint8_t out[FLT_SECAGG_MAX_COHORT * FLT_SA_REVEAL_ENTRY + 8u];
    for (int ops = 0; ops < 8 && fuzz_left(&in) > 0u; ++ops) {
        const uint8_t op = (uint8_t)(fuzz_u8(&in) % 5u);
        flt_status_t s = FLT_OK;
        size_t got = 0;
        if (op == 0u) {
            b.epoch = fuzz_u8(&in);
            b.round = fuzz_u8(&in);
            if (begun++ > 0) { /* one BEGIN per input: each costs one or two X25519 */
                continue;
            }
            s = flt_secagg_begin(&g_c, &b, &adv);
            if (s == FLT_OK) {
                masked = unmasked = 0;
            }
        } else if (op == 1u) {
            const uint32_t n = 2u + fuzz_u8(&in) % 2u;
            const size_t len = FLT_SA_COHORT_HEADER + n * FLT_SA_COHORT_ENTRY;
            memset(buf, 0, sizeof buf);
            const uint8_t *src = fuzz_take(&in, len, &got);
            if (got > 0u) {
                memcpy(buf, src, got);
            }
            const uint8_t p = fuzz_u8(&in);
            if ((p & 0x80u) == 0u) {
                uint8_t *e = buf + FLT_SA_COHORT_HEADER;
                for (uint32_t i = 0; i < n; ++i) { /* ids around this device's, increasing */
                    const uint32_t id = FUZZ_DEVICE_ID - (p % n) + i;
                    flt_le_put32(e + i * FLT_SA_COHORT_ENTRY, id);
                    if (id == FUZZ_DEVICE_ID) {
                        memcpy(e + i * FLT_SA_COHORT_ENTRY + 4u, adv.chan_pk, 32u);
                        memcpy(e + i * FLT_SA_COHORT_ENTRY + 36u, adv.mask_pk, 32u);
                    }
                }
                flt_le_put16(buf + 26, (uint16_t)n);
            }
            flt_sa_cohort_t co;
            s = flt_sa_cohort_decode(buf, len, &co);
            if (s == FLT_OK) {
                s = flt_secagg_cohort(&g_c, &co);
            }
            if (s == FLT_OK) {
                uint16_t count = 0;
                uint8_t deal[3u * FLT_SA_SHARES_ENTRY];
                FUZZ_ASSERT(flt_secagg_deal(&g_c, deal, sizeof deal, &count) == FLT_OK);
                FUZZ_ASSERT(count == n - 1u);
            }
        } else if (op == 2u || op == 4u) {
            const size_t want = fuzz_u16(&in) % 512u;
            const uint8_t *src = fuzz_take(&in, want, &got);
            uint8_t *p = fuzz_dup(src, got);
            const uint8_t seal = op == 2u ? fuzz_u8(&in) : 0u;
            if (op == 2u) {
                if ((seal & 1u) && got >= 8u + FLT_SA_SHARES_ENTRY && g_c.n > 0u) {
                    const uint32_t from = flt_le_get32(p + 8);
                    for (uint32_t i = 0; i < g_c.n; ++i) {
                        if (g_c.m[i].mask.id == from && i != g_c.self) {
                            uint8_t pt[FLT_SECAGG_BOX_PT] = {0};
                            FUZZ_ASSERT(flt_secagg_box_seal(g_c.chan[g_c.m[i].chan_slot].chan,
                                                            flt_le_get32(p), from, FUZZ_DEVICE_ID,
                                                            pt, p + 12) == FLT_OK);
                        }
                    }
                }
                flt_sa_shares_t sh;
                s = flt_sa_shares_decode(p, got, &sh);
                if (s == FLT_OK) {
                    s = flt_secagg_receive(&g_c, &sh);
                }
            } else {
                flt_sa_unmask_t u;
                s = flt_sa_unmask_decode(p, got, &u);
                if (s == FLT_OK) {
                    uint16_t count = 0;
                    const uint16_t n = g_c.n;
                    s = flt_secagg_unmask(&g_c, &u, out + 8, sizeof out - 8u, &count);
                    if (s == FLT_OK) {
                        FUZZ_ASSERT(!unmasked && masked && count + 1u <= n);
                        unmasked = 1;
                        flt_le_put32(out, u.round);
                        flt_le_put16(out + 4, count);
                        out[6] = out[7] = 0u;
                        flt_sa_reveal_t r;
                        FUZZ_ASSERT(flt_sa_reveal_decode(out,
                                                         8u + (size_t)count * FLT_SA_REVEAL_ENTRY,
                                                         &r) == FLT_OK);
                    }
                }
            }
            free(p);
        } else {
            const uint32_t k = fuzz_u8(&in);
            uint32_t v[256];
            for (uint32_t j = 0; j < k; ++j) {
                v[j] = fuzz_u32(&in);
            }
            s = flt_secagg_mask_input(&g_c, v, k);
            if (s == FLT_OK) {
                FUZZ_ASSERT(!masked);
                masked = 1;
            }
        }
        FUZZ_ASSERT(ok_status(s));
    }
    flt_secagg_client_wipe(&g_c);
    return 0;
}
