/* x25519.c - X25519 (RFC 7748): the Montgomery ladder over GF(2^255 - 19); see x25519.h. */
#include "x25519.h"

#include "core/flt_bytes.h"

/* The carries below shift negative int64 values right and rely on the shift being
 * arithmetic (implementation-defined in C99, arithmetic on every GCC and Clang target). */
typedef char flt_x25519_arithmetic_shift_check[((-1 >> 1) == -1) ? 1 : -1];

/* A field element: value = sum f[i] * 2^ceil(25.5 i), limbs 0, 2, 4, ... of 26 bits and
 * 1, 3, 5, ... of 25 bits. "Carried" (the output of fe_carry and of every multiplication)
 * means |even limb| <= 2^25 and |odd limb| <= 2^24 + 2^15; fe_add / fe_sub of two carried
 * elements gives limbs below 2^26 / 2^25 + 2^16, which is what fe_mul accepts. */
typedef int32_t fe[10];

static const uint8_t kOffset[10] = {0, 26, 51, 77, 102, 128, 153, 179, 204, 230};

static uint32_t limb_bits(unsigned i)
{
    return (i & 1u) ? 25u : 26u;
}

static void fe_copy(fe h, const fe f)
{
    for (unsigned i = 0; i < 10; ++i) {
        h[i] = f[i];
    }
}

static void fe_set_small(fe h, int32_t v)
{
    h[0] = v;
    for (unsigned i = 1; i < 10; ++i) {
        h[i] = 0;
    }
}

static void fe_add(fe h, const fe f, const fe g)
{
    for (unsigned i = 0; i < 10; ++i) {
        h[i] = f[i] + g[i];
    }
}

static void fe_sub(fe h, const fe f, const fe g)
{
    for (unsigned i = 0; i < 10; ++i) {
        h[i] = f[i] - g[i];
    }
}

/* Exchange f and g when b == 1, leave them when b == 0, with the same operations either way. */
static void fe_cswap(fe f, fe g, uint32_t b)
{
    const int32_t mask = -(int32_t)b;
    for (unsigned i = 0; i < 10; ++i) {
        const int32_t x = mask & (f[i] ^ g[i]);
        f[i] ^= x;
        g[i] ^= x;
    }
}

/* Round-to-nearest carries from each limb into the next (2^255 = 19 mod p wraps the top
 * carry into limb 0), then limb 0 once more. Input: |t[i]| < 2^62. Output: carried. Range:
 * the carry out of limb i is below 2^62 / 2^25 = 2^37, so each t[i+1] stays below 2^62 + 2^37
 * and 19 * carry9 < 2^42; limb 1 receives at most 2^42 / 2^26 + 1 < 2^17 from the last carry. */
static void fe_carry(fe h, int64_t t[10])
{
    for (unsigned i = 0; i < 10; ++i) {
        const uint32_t w = limb_bits(i);
        const int64_t c = (t[i] + ((int64_t)1 << (w - 1u))) >> w;
        t[i] -= c * ((int64_t)1 << w);
        if (i < 9u) {
            t[i + 1u] += c;
        } else {
            t[0] += 19 * c;
        }
    }
    const int64_t c0 = (t[0] + ((int64_t)1 << 25)) >> 26;
    t[0] -= c0 * ((int64_t)1 << 26);
    t[1] += c0;
    for (unsigned i = 0; i < 10; ++i) {
        h[i] = (int32_t)t[i];
    }
}

/* h = f * g mod p (h may alias f or g). Inputs: sums or differences of two carried elements
 * (|limb| < 2^26, odd limbs < 2^25 + 2^16). Row i of the schoolbook product adds f[i] * g[j] at
 * position i + j, times 2 when i and j are both odd (2^ceil(25.5 i) 2^ceil(25.5 j) = 2 *
 * 2^ceil(25.5 (i + j)) then) and times 19 when i + j >= 10 (2^255 = 19 mod p): the odd rows
 * read g with its odd limbs doubled (gd), the wrapped columns g times 19. Range: every table
 * entry fits int32 (38 * (2^25 + 2^16) < 2^31, 19 * 2^26 < 2^31), a product term is below
 * 2^26 * 2^30.3 = 2^56.3, ten terms per output limb below 2^59.7 < 2^62 (fe_carry's bound). */
static void fe_mul(fe h, const fe f, const fe g)
{
    int32_t g19[10], gd[10], gd19[10];
    int64_t t[10];
    for (unsigned j = 0; j < 10; ++j) {
        g19[j] = 19 * g[j];
        gd[j] = (j & 1u) ? 2 * g[j] : g[j];
        gd19[j] = 19 * gd[j];
        t[j] = 0;
    }
    for (unsigned i = 0; i < 10; ++i) {
        const int32_t *lo = (i & 1u) ? gd : g;
        const int32_t *hi = (i & 1u) ? gd19 : g19;
        const int64_t fi = f[i];
        for (unsigned j = 0; j < 10u - i; ++j) {
            t[i + j] += fi * lo[j];
        }
        for (unsigned j = 10u - i; j < 10u; ++j) {
            t[i + j - 10u] += fi * hi[j];
        }
    }
    fe_carry(h, t);
}

/* h = f^2 (h may alias f): fe_mul's products with each pair i < j taken once and doubled, so
 * 55 products instead of 100. Same input bound and tables as fe_mul (of f); the doubled
 * factor 2 f[i] < 2^27, so a term is below 2^57.3 and an output limb (at most five pairs and
 * one square) below 2^60 < 2^62. */
static void fe_sq(fe h, const fe f)
{
    int32_t f19[10], fd[10], fd19[10];
    int64_t t[10];
    for (unsigned j = 0; j < 10; ++j) {
        f19[j] = 19 * f[j];
        fd[j] = (j & 1u) ? 2 * f[j] : f[j];
        fd19[j] = 19 * fd[j];
        t[j] = 0;
    }
    for (unsigned i = 0; i < 10; ++i) {
        const int32_t *lo = (i & 1u) ? fd : f;
        const int32_t *hi = (i & 1u) ? fd19 : f19;
        const int64_t fi = f[i];
        const int64_t fi2 = 2 * fi;
        if (2u * i < 10u) {
            t[2u * i] += fi * lo[i];
        } else {
            t[2u * i - 10u] += fi * hi[i];
        }
        for (unsigned j = i + 1u; j < 10u - i; ++j) {
            t[i + j] += fi2 * lo[j];
        }
        for (unsigned j = (10u - i > i + 1u) ? 10u - i : i + 1u; j < 10u; ++j) {
            t[i + j - 10u] += fi2 * hi[j];
        }
    }
    fe_carry(h, t);
}

/* h = f^(2^n) */
static void fe_sq_n(fe h, const fe f, unsigned n)
{
    fe_sq(h, f);
    for (unsigned i = 1; i < n; ++i) {
        fe_sq(h, h);
    }
}

/* h = f * k for a small constant 0 <= k < 2^17 (f: a sum or difference of carried elements,
 * so each product is below 2^43). */
static void fe_mul_small(fe h, const fe f, int32_t k)
{
    int64_t t[10];
    for (unsigned i = 0; i < 10; ++i) {
        t[i] = (int64_t)f[i] * k;
    }
    fe_carry(h, t);
}

/* h = z^(p - 2) = z^(2^255 - 21) = 1 / z (0 for z = 0): the usual addition chain of
 * 254 squarings and 11 multiplications. */
static void fe_invert(fe h, const fe z)
{
    fe z2, z9, z11, z_5_0, z_10_0, z_20_0, z_50_0, z_100_0, t;
    fe_sq(z2, z);               /* 2 */
    fe_sq_n(t, z2, 2);          /* 8 */
    fe_mul(z9, t, z);           /* 9 */
    fe_mul(z11, z9, z2);        /* 11 */
    fe_sq(t, z11);              /* 22 */
    fe_mul(z_5_0, t, z9);       /* 2^5 - 1 */
    fe_sq_n(t, z_5_0, 5);       /* 2^10 - 2^5 */
    fe_mul(z_10_0, t, z_5_0);   /* 2^10 - 1 */
    fe_sq_n(t, z_10_0, 10);     /* 2^20 - 2^10 */
    fe_mul(z_20_0, t, z_10_0);  /* 2^20 - 1 */
    fe_sq_n(t, z_20_0, 20);     /* 2^40 - 2^20 */
    fe_mul(t, t, z_20_0);       /* 2^40 - 1 */
    fe_sq_n(t, t, 10);          /* 2^50 - 2^10 */
    fe_mul(z_50_0, t, z_10_0);  /* 2^50 - 1 */
    fe_sq_n(t, z_50_0, 50);     /* 2^100 - 2^50 */
    fe_mul(z_100_0, t, z_50_0); /* 2^100 - 1 */
    fe_sq_n(t, z_100_0, 100);   /* 2^200 - 2^100 */
    fe_mul(t, t, z_100_0);      /* 2^200 - 1 */
    fe_sq_n(t, t, 50);          /* 2^250 - 2^50 */
    fe_mul(t, t, z_50_0);       /* 2^250 - 1 */
    fe_sq_n(t, t, 5);           /* 2^255 - 2^5 */
    fe_mul(h, t, z11);          /* 2^255 - 21 */
}

/* The 255 low bits of s, little-endian (bit 255 dropped, as RFC 7748 decodeUCoordinate). */
static void fe_frombytes(fe h, const uint8_t s[32])
{
    for (unsigned i = 0; i < 10; ++i) {
        const unsigned first = kOffset[i] / 8u;
        uint64_t v = 0;
        for (unsigned b = 0; b < 5u && first + b < 32u; ++b) {
            v |= (uint64_t)s[first + b] << (8u * b);
        }
        v >>= kOffset[i] % 8u;
        h[i] = (int32_t)(v & ((1u << limb_bits(i)) - 1u));
    }
}

/* The canonical encoding (value mod p in [0, p)) of a carried element. q = floor(h / p) is
 * found from the top down (h + 19 q then has bit 255 = q and the remainder below it); floor
 * carries then leave every limb in [0, 2^w) and the carry out of the top limb (q * 2^255) is
 * dropped. */
static void fe_tobytes(uint8_t s[32], const fe f)
{
    fe h;
    fe_copy(h, f);
    int32_t q = (19 * h[9] + ((int32_t)1 << 24)) >> 25;
    for (unsigned i = 0; i < 10; ++i) {
        q = (h[i] + q) >> limb_bits(i);
    }
    h[0] += 19 * q;
    for (unsigned i = 0; i < 9; ++i) {
        const uint32_t w = limb_bits(i);
        const int32_t c = h[i] >> w;
        h[i + 1u] += c;
        h[i] -= c * ((int32_t)1 << w);
    }
    h[9] -= (h[9] >> 25) * ((int32_t)1 << 25);
    uint64_t acc = 0;
    uint32_t bits = 0;
    unsigned n = 0;
    for (unsigned i = 0; i < 10; ++i) {
        acc |= (uint64_t)(uint32_t)h[i] << bits;
        bits += limb_bits(i);
        while (bits >= 8u) {
            s[n++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8u;
        }
    }
    s[n] = (uint8_t)acc; /* the last 7 bits: n == 31 */
    flt_bytes_zero(h, sizeof h);
}

typedef struct {
    uint8_t k[32];
    fe x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb;
} ladder_t;

void flt_x25519(uint8_t out[FLT_X25519_SIZE], const uint8_t scalar[FLT_X25519_SIZE],
                const uint8_t u[FLT_X25519_SIZE])
{
    ladder_t L;
    flt_bytes_copy(L.k, scalar, 32);
    L.k[0] &= 248u;
    L.k[31] &= 127u;
    L.k[31] |= 64u;
    fe_frombytes(L.x1, u);
    fe_set_small(L.x2, 1);
    fe_set_small(L.z2, 0);
    fe_copy(L.x3, L.x1);
    fe_set_small(L.z3, 1);
    uint32_t swap = 0;
    for (int t = 254; t >= 0; --t) {
        const uint32_t bit = (uint32_t)(L.k[t >> 3] >> (t & 7)) & 1u;
        swap ^= bit;
        fe_cswap(L.x2, L.x3, swap);
        fe_cswap(L.z2, L.z3, swap);
        swap = bit;
        fe_add(L.a, L.x2, L.z2);
        fe_sq(L.aa, L.a);
        fe_sub(L.b, L.x2, L.z2);
        fe_sq(L.bb, L.b);
        fe_sub(L.e, L.aa, L.bb);
        fe_add(L.c, L.x3, L.z3);
        fe_sub(L.d, L.x3, L.z3);
        fe_mul(L.da, L.d, L.a);
        fe_mul(L.cb, L.c, L.b);
        fe_add(L.x3, L.da, L.cb);
        fe_sq(L.x3, L.x3);
        fe_sub(L.z3, L.da, L.cb);
        fe_sq(L.z3, L.z3);
        fe_mul(L.z3, L.z3, L.x1);
        fe_mul(L.x2, L.aa, L.bb);
        fe_mul_small(L.z2, L.e, 121665);
        fe_add(L.z2, L.z2, L.aa);
        fe_mul(L.z2, L.z2, L.e);
    }
    fe_cswap(L.x2, L.x3, swap);
    fe_cswap(L.z2, L.z3, swap);
    fe_invert(L.z2, L.z2);
    fe_mul(L.x2, L.x2, L.z2);
    fe_tobytes(out, L.x2);
    flt_bytes_zero(&L, sizeof L);
}

void flt_x25519_public(uint8_t pub[FLT_X25519_SIZE], const uint8_t secret[FLT_X25519_SIZE])
{
    static const uint8_t base[FLT_X25519_SIZE] = {9};
    flt_x25519(pub, secret, base);
}

flt_status_t flt_x25519_shared(uint8_t shared[FLT_X25519_SIZE],
                               const uint8_t secret[FLT_X25519_SIZE],
                               const uint8_t peer[FLT_X25519_SIZE])
{
    flt_x25519(shared, secret, peer);
    uint8_t any = 0;
    for (unsigned i = 0; i < FLT_X25519_SIZE; ++i) {
        any |= shared[i];
    }
    return any != 0u ? FLT_OK : FLT_ERR_ARG;
}
