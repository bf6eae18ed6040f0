/* flt_secagg_dev.c - see flt_secagg_dev.h. */
#include "flt_secagg_dev.h"

#if FLT_APP_SECAGG

#include "core/flt_bytes.h"
#include "port.h"
#include "proto/messages.h"
#include "proto/sha256.h"
#include "secagg/client.h"
#include "secagg/input.h"

#define P FLT_HEAD_PARAMS

static flt_secagg_client_t client;
static float kept_delta[P]; /* the round's delta (TRAIN SECAGG), until masked */
static uint32_t kept_round;
static int kept_valid;
/* MASKED: the round's index set, then (in place, input.h reads idx[j] before out[j] is
 * written) the quantized values, then the masked values */
static uint32_t sa_values[P];

/* The device secret (keys.h: every secret of the protocol derives from it). With a TRNG
 * (FLT_PORT_HAS_ENTROPY) it is drawn at init; otherwise the stand-in: SHA-256 of a label, the
 * device id, the caller's seed (its data region) and what flt_secagg_dev_stir mixed in, fixed
 * at the first BEGIN (docs/protocol.md "Secure aggregation on the device link"). */
static flt_sha256_t stand_in;
static int secret_fixed;
static uint32_t dev_id;

flt_status_t flt_secagg_dev_init(uint32_t device_id, const uint8_t *seed, size_t seed_len)
{
    uint8_t secret[32];
    FLT_REQUIRE(seed != NULL || seed_len == 0u, FLT_ERR_ARG);
    kept_valid = 0;
    dev_id = device_id;
#ifdef FLT_PORT_HAS_ENTROPY
    (void)seed;
    (void)seed_len;
    FLT_TRY(flt_port_entropy(secret, sizeof secret));
    secret_fixed = 1;
#else
    static const char label[] = "fltiny secagg device secret stand-in (no TRNG)";
    uint8_t id[4];
    flt_le_put32(id, device_id);
    flt_sha256_init(&stand_in);
    flt_sha256_update(&stand_in, (const uint8_t *)label, sizeof label - 1u);
    flt_sha256_update(&stand_in, id, sizeof id);
    if (seed_len > 0u) {
        flt_sha256_update(&stand_in, seed, seed_len);
    }
    secret_fixed = 0;
    flt_bytes_zero(secret, sizeof secret); /* replaced at the first BEGIN */
#endif
    flt_status_t s = flt_secagg_client_init(&client, device_id, secret);
    flt_bytes_zero(secret, sizeof secret);
    return s;
}

void flt_secagg_dev_stir(uint32_t word)
{
    if (!secret_fixed) {
        uint8_t w[4];
        flt_le_put32(w, word);
        flt_sha256_update(&stand_in, w, sizeof w);
    }
}

/* The stand-in secret, once (a client with no session yet: nothing to lose). */
static flt_status_t fix_secret(void)
{
    if (secret_fixed) {
        return FLT_OK;
    }
    uint8_t w[4], secret[32];
    flt_le_put32(w, flt_port_millis());
    flt_sha256_update(&stand_in, w, sizeof w);
    flt_sha256_final(&stand_in, secret);
    flt_bytes_zero(&stand_in, sizeof stand_in);
    flt_status_t s = flt_secagg_client_init(&client, dev_id, secret);
    flt_bytes_zero(secret, sizeof secret);
    secret_fixed = s == FLT_OK;
    return s;
}

void flt_secagg_dev_keep(uint32_t round, const float *trained, const float *held)
{
    for (uint32_t i = 0; i < P; ++i) {
        kept_delta[i] = trained[i] - held[i]; /* float32, as the host's replay computes it */
    }
    kept_round = round;
    kept_valid = 1;
}

static void wipe_kept(void)
{
    flt_bytes_zero(kept_delta, sizeof kept_delta);
    flt_bytes_zero(sa_values, sizeof sa_values);
    kept_valid = 0;
}

/* Each step writes its reply body at out + 1 (after the kind byte) into cap - 1 bytes. */

static flt_status_t on_begin(const uint8_t *b, size_t n, uint8_t *out, size_t cap, size_t *len,
                             const char **why)
{
    flt_sa_begin_t m;
    flt_sa_advertise_t adv;
    *why = "secagg BEGIN refused";
    FLT_TRY(flt_sa_begin_decode(b, n, &m));
    FLT_TRY(fix_secret());
    FLT_TRY(flt_secagg_begin(&client, &m, &adv));
    *why = "secagg ADVERTISE encoding failed";
    return flt_sa_advertise_encode(&adv, out, cap, len);
}

static flt_status_t on_cohort(const uint8_t *b, size_t n, uint8_t *out, size_t cap, size_t *len,
                              const char **why)
{
    flt_sa_cohort_t co;
    *why = "secagg COHORT refused";
    FLT_TRY(flt_sa_cohort_decode(b, n, &co));
    FLT_REQUIRE(co.k <= P, FLT_ERR_SHAPE);
    FLT_TRY(flt_secagg_cohort(&client, &co));
    FLT_REQUIRE(cap >= FLT_SA_SHARES_HEADER, FLT_ERR_NOMEM);
    flt_sa_shares_t sh;
    *why = "secagg deal failed";
    /* dealt in place after the header: the encoder's copy onto itself leaves them as they are */
    FLT_TRY(flt_secagg_deal(&client, out + FLT_SA_SHARES_HEADER, cap - FLT_SA_SHARES_HEADER,
                            &sh.count));
    sh.round = co.round;
    sh.entries = out + FLT_SA_SHARES_HEADER;
    return flt_sa_shares_encode(&sh, out, cap, len);
}

static flt_status_t on_shares(const uint8_t *b, size_t n, uint8_t *out, size_t cap, size_t *len,
                              const char **why)
{
    flt_sa_shares_t sh;
    *why = "secagg SHARES refused";
    FLT_TRY(flt_sa_shares_decode(b, n, &sh));
    FLT_TRY(flt_secagg_receive(&client, &sh));
    *why = "secagg MASKED: no kept delta of this round (TRAIN SECAGG first)";
    FLT_REQUIRE(kept_valid && kept_round == client.round, FLT_ERR_STATE);
    *why = "secagg MASKED: quantizing the delta failed";
    FLT_TRY(flt_secagg_index_set(client.index_seed, client.round, P, client.k, sa_values));
    FLT_TRY(flt_secagg_quantize(kept_delta, P, sa_values, client.k, client.scale, client.qmax,
                                sa_values));
    *why = "secagg MASKED: masking failed";
    flt_status_t s = flt_secagg_mask_input(&client, sa_values, client.k);
    if (s == FLT_OK) {
        *why = "secagg MASKED encoding failed";
        s = flt_sa_masked_encode(client.round, client.w, sa_values, client.k, out, cap, len);
    }
    wipe_kept(); /* masked once: the plain values go nowhere else */
    return s;
}

static flt_status_t on_unmask(const uint8_t *b, size_t n, uint8_t *out, size_t cap, size_t *len,
                              const char **why)
{
    flt_sa_unmask_t u;
    flt_sa_reveal_t r;
    *why = "secagg UNMASK refused";
    FLT_TRY(flt_sa_unmask_decode(b, n, &u));
    FLT_REQUIRE(cap >= FLT_SA_REVEAL_HEADER, FLT_ERR_NOMEM);
    FLT_TRY(flt_secagg_unmask(&client, &u, out + FLT_SA_REVEAL_HEADER, cap - FLT_SA_REVEAL_HEADER,
                              &r.count));
    r.round = u.round;
    r.entries = out + FLT_SA_REVEAL_HEADER;
    *why = "secagg REVEAL encoding failed";
    return flt_sa_reveal_encode(&r, out, cap, len);
}

flt_status_t flt_secagg_dev_handle(const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                                   size_t *out_len, const char **why)
{
    static const char *const bad = "secagg message refused";
    *why = bad;
    FLT_REQUIRE(msg != NULL && out != NULL && out_len != NULL && len >= 1u && cap >= 1u,
                FLT_ERR_ARG);
    *out_len = 0;
    const uint8_t kind = msg[0];
    uint8_t reply;
    size_t n = 0;
    flt_status_t s;
    switch (kind) {
    case FLT_SECAGG_KIND_BEGIN:
        reply = FLT_SECAGG_KIND_ADVERTISE;
        s = on_begin(msg + 1, len - 1u, out + 1, cap - 1u, &n, why);
        break;
    case FLT_SECAGG_KIND_COHORT:
        reply = FLT_SECAGG_KIND_SHARES;
        s = on_cohort(msg + 1, len - 1u, out + 1, cap - 1u, &n, why);
        break;
    case FLT_SECAGG_KIND_SHARES:
        reply = FLT_SECAGG_KIND_MASKED;
        s = on_shares(msg + 1, len - 1u, out + 1, cap - 1u, &n, why);
        break;
    case FLT_SECAGG_KIND_UNMASK:
        reply = FLT_SECAGG_KIND_REVEAL;
        s = on_unmask(msg + 1, len - 1u, out + 1, cap - 1u, &n, why);
        break;
    default:
        *why = "secagg: a device's kind sent by the host";
        return FLT_ERR_UNSUPPORTED;
    }
    if (s != FLT_OK) {
        return s;
    }
    out[0] = reply;
    *out_len = n + 1u;
    *why = "";
    return FLT_OK;
}

#else
typedef int flt_secagg_dev_unused_t; /* ISO C: a translation unit is not empty */
#endif /* FLT_APP_SECAGG */
