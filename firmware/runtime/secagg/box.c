/* box.c - encrypt-then-MAC envelopes of Shamir shares; see box.h. */
#include "box.h"

#include "core/flt_bytes.h"
#include "crypto/chacha20.h"
#include "keys.h"
#include "proto/hmac.h"

static flt_status_t box_keys(const uint8_t chan[32], uint32_t round, uint32_t from, uint32_t to,
                             uint8_t keys[64])
{
    FLT_REQUIRE(chan != NULL && from != to, FLT_ERR_ARG);
    return flt_secagg_derive(chan, 32u, "box ", round, from, to, 3u, keys, 64u);
}

static void box_tag(const uint8_t mac_key[32], uint32_t round, uint32_t from, uint32_t to,
                    const uint8_t *ct, uint8_t tag[FLT_SHA256_DIGEST_SIZE])
{
    uint8_t head[12];
    flt_le_put32(head, round);
    flt_le_put32(head + 4, from);
    flt_le_put32(head + 8, to);
    flt_hmac_t h;
    flt_hmac_init(&h, mac_key, 32u);
    flt_hmac_update(&h, head, sizeof head);
    flt_hmac_update(&h, ct, FLT_SECAGG_BOX_PT);
    flt_hmac_final(&h, tag);
    flt_bytes_zero(&h, sizeof h);
}

flt_status_t flt_secagg_box_seal(const uint8_t chan[32], uint32_t round, uint32_t from, uint32_t to,
                                 const uint8_t pt[FLT_SECAGG_BOX_PT],
                                 uint8_t box[FLT_SECAGG_BOX_SIZE])
{
    FLT_REQUIRE(pt != NULL && box != NULL, FLT_ERR_ARG);
    static const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    uint8_t keys[64];
    uint8_t tag[FLT_SHA256_DIGEST_SIZE];
    FLT_TRY(box_keys(chan, round, from, to, keys));
    flt_chacha20_t ks;
    flt_chacha20_init(&ks, keys, nonce, 0);
    flt_status_t s = flt_chacha20_xor(&ks, pt, box, FLT_SECAGG_BOX_PT); /* 1 block: cannot wrap */
    flt_chacha20_wipe(&ks);
    if (s == FLT_OK) {
        box_tag(keys + 32, round, from, to, box, tag);
        flt_bytes_copy(box + FLT_SECAGG_BOX_PT, tag, FLT_SECAGG_BOX_TAG);
    }
    flt_bytes_zero(keys, sizeof keys);
    return s;
}

flt_status_t flt_secagg_box_open(const uint8_t chan[32], uint32_t round, uint32_t from, uint32_t to,
                                 const uint8_t box[FLT_SECAGG_BOX_SIZE],
                                 uint8_t pt[FLT_SECAGG_BOX_PT])
{
    FLT_REQUIRE(pt != NULL && box != NULL, FLT_ERR_ARG);
    static const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    uint8_t keys[64];
    uint8_t tag[FLT_SHA256_DIGEST_SIZE];
    FLT_TRY(box_keys(chan, round, from, to, keys));
    box_tag(keys + 32, round, from, to, box, tag);
    flt_status_t s = FLT_ERR_AUTH;
    if (flt_ct_equal(tag, box + FLT_SECAGG_BOX_PT, FLT_SECAGG_BOX_TAG)) {
        flt_chacha20_t ks;
        flt_chacha20_init(&ks, keys, nonce, 0);
        s = flt_chacha20_xor(&ks, box, pt, FLT_SECAGG_BOX_PT);
        flt_chacha20_wipe(&ks);
    }
    flt_bytes_zero(keys, sizeof keys);
    flt_bytes_zero(tag, sizeof tag);
    return s;
}
