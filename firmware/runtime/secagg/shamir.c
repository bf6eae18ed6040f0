/* shamir.c - Shamir secret sharing over GF(2^8); see shamir.h. */
#include "shamir.h"

#include "core/flt_bytes.h"
#include "crypto/chacha20.h"

uint8_t flt_gf256_mul(uint8_t a, uint8_t b)
{
    uint32_t x = a, y = b, r = 0;
    for (int i = 0; i < 8; ++i) {
        r ^= x & (0u - (y & 1u));                  /* add x when the low bit of y is set */
        x = (x << 1) ^ (0x11Bu & (0u - (x >> 7))); /* x * 2 mod the polynomial */
        y >>= 1;
    }
    return (uint8_t)r;
}

uint8_t flt_gf256_inv(uint8_t a)
{
    /* a^254 = a^-1 in GF(2^8)* (and 0 for 0): square-and-multiply over the fixed exponent */
    uint8_t r = 1, p = a;
    for (int i = 0; i < 8; ++i) {
        if ((254u >> i) & 1u) { /* public constant exponent: no secret branch */
            r = flt_gf256_mul(r, p);
        }
        p = flt_gf256_mul(p, p);
    }
    return r;
}

flt_status_t flt_shamir_share(const uint8_t *secret, uint32_t len, uint32_t t,
                              const uint8_t poly_key[32], uint8_t x, uint8_t *share)
{
    FLT_REQUIRE(x != 0u && t >= 1u && t <= FLT_SHAMIR_MAX_T, FLT_ERR_ARG);
    FLT_REQUIRE(len >= 1u && len <= FLT_SHAMIR_MAX_LEN, FLT_ERR_ARG);
    FLT_REQUIRE(secret != NULL && poly_key != NULL && share != NULL, FLT_ERR_ARG);
    static const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    uint8_t acc[FLT_SHAMIR_MAX_LEN];
    uint8_t coef[FLT_SHAMIR_MAX_LEN];
    flt_chacha20_t ks;
    flt_chacha20_init(&ks, poly_key, nonce, 0);
    flt_bytes_copy(acc, secret, len);
    uint8_t xj = 1; /* x^j */
    flt_status_t s = FLT_OK;
    for (uint32_t j = 1; j < t && s == FLT_OK; ++j) {
        /* (t - 1) * len <= 254 * 64 bytes of keystream: 254 blocks, no counter wrap */
        s = flt_chacha20_read(&ks, coef, len);
        xj = flt_gf256_mul(xj, x);
        for (uint32_t i = 0; i < len; ++i) {
            acc[i] ^= flt_gf256_mul(coef[i], xj);
        }
    }
    if (s == FLT_OK) {
        flt_bytes_copy(share, acc, len);
    }
    flt_bytes_zero(acc, sizeof acc);
    flt_bytes_zero(coef, sizeof coef);
    flt_chacha20_wipe(&ks);
    return s;
}

flt_status_t flt_shamir_recover(const uint8_t *xs, const uint8_t *shares, uint32_t t, uint32_t len,
                                uint8_t *secret)
{
    FLT_REQUIRE(t >= 1u && t <= FLT_SHAMIR_MAX_T, FLT_ERR_ARG);
    FLT_REQUIRE(len >= 1u && len <= FLT_SHAMIR_MAX_LEN, FLT_ERR_ARG);
    FLT_REQUIRE(xs != NULL && shares != NULL && secret != NULL, FLT_ERR_ARG);
    for (uint32_t i = 0; i < t; ++i) { /* public coordinates: checked with branches */
        FLT_REQUIRE(xs[i] != 0u, FLT_ERR_ARG);
        for (uint32_t j = i + 1u; j < t; ++j) {
            FLT_REQUIRE(xs[i] != xs[j], FLT_ERR_ARG);
        }
    }
    uint8_t acc[FLT_SHAMIR_MAX_LEN] = {0};
    for (uint32_t i = 0; i < t; ++i) {
        /* Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); minus is xor here */
        uint8_t num = 1, den = 1;
        for (uint32_t j = 0; j < t; ++j) {
            if (j != i) {
                num = flt_gf256_mul(num, xs[j]);
                den = flt_gf256_mul(den, (uint8_t)(xs[j] ^ xs[i]));
            }
        }
        const uint8_t l = flt_gf256_mul(num, flt_gf256_inv(den));
        for (uint32_t b = 0; b < len; ++b) {
            acc[b] ^= flt_gf256_mul(shares[i * len + b], l);
        }
    }
    flt_bytes_copy(secret, acc, len);
    flt_bytes_zero(acc, sizeof acc);
    return FLT_OK;
}
