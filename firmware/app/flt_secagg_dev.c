/* flt_secagg_dev.c - see flt_secagg_dev.h. */
#include "flt_secagg_dev.h"

#if FLT_APP_SECAGG

#include "core/flt_bytes.h"
#include "port.h"
#include "proto/messages.h"
#include "secagg/client.h"
#include "secagg/input.h"
#include "secagg/keys.h"

#define P FLT_HEAD_PARAMS

static flt_secagg_client_t client;
static float kept_delta[P]; /* the round's delta (TRAIN SECAGG), until masked */
static uint32_t kept_round;
static int kept_valid;
/* MASKED: the round's index set, then (in place, input.h reads idx[j] before out[j] is
 * written) the quantized values, then the masked values */
static uint32_t sa_values[P];

/* The device secret (keys.h: every secret of the protocol derives from it): derived from the
 * port's boot secret (port.h flt_port_boot_secret: the board's TRNG, or on QEMU the per-launch
 * seed the launcher loads), at the first BEGIN; with its own HKDF label and salt, so it is
 * neither the local-DP key (privacy/local_dp.h) nor related to the link key. */
static int secret_state; /* 0: not drawn yet, 1: drawn, -1: the port has no boot secret */
static uint32_t dev_id;

flt_status_t flt_secagg_dev_init(uint32_t device_id)
{
    static const uint8_t none[32] = {0};
    kept_valid = 0;
    secret_state = 0;
    dev_id = device_id;
    return flt_secagg_client_init(&client, device_id, none); /* no session until the secret */
}

static flt_status_t draw_secret(void)
{
    if (secret_state > 0) {
        return FLT_OK;
    }
    FLT_REQUIRE(secret_state == 0, FLT_ERR_UNSUPPORTED);
    uint8_t boot[FLT_PORT_SECRET_SIZE], secret[32];
    flt_status_t s = flt_port_boot_secret(boot);
    if (s == FLT_OK) {
        s = flt_secagg_derive(boot, FLT_PORT_SECRET_SIZE, "devs", 0u, 0u, 0u, 0u, secret,
                              sizeof secret);
    }
    if (s == FLT_OK) {
        s = flt_secagg_client_init(&client, dev_id, secret);
    }
    flt_bytes_zero(boot, sizeof boot);
    flt_bytes_zero(secret, sizeof secret);
    secret_state = s == FLT_OK ? 1 : -1;
    return s == FLT_OK ? FLT_OK : FLT_ERR_UNSUPPORTED;
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
    *why = "secagg BEGIN: the board has no boot secret (port.h flt_port_boot_secret)";
    FLT_TRY(draw_secret());
    *why = "secagg BEGIN refused";
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
    flt_status_t s = flt_secagg_index_set(client.index_seed, client.round, P, client.k, sa_values);
    if (s == FLT_OK) {
        s = flt_secagg_quantize(kept_delta, P, sa_values, client.k, client.scale, client.qmax,
                                sa_values);
    }
    if (s == FLT_OK) {
        *why = "secagg MASKED: masking failed";
        s = flt_secagg_mask_input(&client, sa_values, client.k);
    }
    if (s == FLT_OK) {
        *why = "secagg MASKED encoding failed";
        s = flt_sa_masked_encode(client.round, client.w, sa_values, client.k, out, cap, len);
    }
    wipe_kept(); /* masked once, or failed on the way: the plain values go nowhere else */
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
