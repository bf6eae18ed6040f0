/* SHA-256 after FIPS 180-4, sections 4.1.2, 4.2.2, 5.3.3 and 6.2. */
#include "sha256.h"

#include "core/flt_bytes.h"

static const uint32_t flt_sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u,
};

#define FLT_ROTR(x, n) (((x) >> (n)) | ((x) << (32u - (n))))

static void flt_sha256_block(uint32_t h[8], const uint8_t *p)
{
    /* 16-word rolling message schedule: 64 bytes of stack instead of 256 */
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    uint32_t t;
    for (t = 0; t < 64u; ++t) {
        uint32_t wt, t1, t2;
        if (t < 16u) {
            wt = ((uint32_t)p[4u * t] << 24) | ((uint32_t)p[4u * t + 1u] << 16) |
                 ((uint32_t)p[4u * t + 2u] << 8) | (uint32_t)p[4u * t + 3u];
        } else {
            uint32_t w15 = w[(t - 15u) & 15u], w2 = w[(t - 2u) & 15u];
            uint32_t s0 = FLT_ROTR(w15, 7u) ^ FLT_ROTR(w15, 18u) ^ (w15 >> 3);
            uint32_t s1 = FLT_ROTR(w2, 17u) ^ FLT_ROTR(w2, 19u) ^ (w2 >> 10);
            wt = w[t & 15u] + s0 + w[(t - 7u) & 15u] + s1;
        }
        w[t & 15u] = wt;
        t1 = hh + (FLT_ROTR(e, 6u) ^ FLT_ROTR(e, 11u) ^ FLT_ROTR(e, 25u)) + ((e & f) ^ (~e & g)) +
             flt_sha256_k[t] + wt;
        t2 =
            (FLT_ROTR(a, 2u) ^ FLT_ROTR(a, 13u) ^ FLT_ROTR(a, 22u)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void flt_sha256_init(flt_sha256_t *ctx)
{
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    flt_bytes_copy(ctx->h, iv, sizeof iv);
    ctx->total = 0;
    ctx->fill = 0;
}

void flt_sha256_update(flt_sha256_t *ctx, const uint8_t *data, size_t len)
{
    size_t i = 0;
    ctx->total += (uint64_t)len;
    while (i < len) {
        if (ctx->fill == 0u && len - i >= FLT_SHA256_BLOCK_SIZE) {
            flt_sha256_block(ctx->h, data + i);
            i += FLT_SHA256_BLOCK_SIZE;
            continue;
        }
        ctx->block[ctx->fill++] = data[i++];
        if (ctx->fill == FLT_SHA256_BLOCK_SIZE) {
            flt_sha256_block(ctx->h, ctx->block);
            ctx->fill = 0;
        }
    }
}

void flt_sha256_final(flt_sha256_t *ctx, uint8_t digest[FLT_SHA256_DIGEST_SIZE])
{
    uint64_t bits = ctx->total * 8u;
    uint32_t i;
    ctx->block[ctx->fill++] = 0x80u;
    if (ctx->fill > 56u) {
        flt_bytes_zero(ctx->block + ctx->fill, FLT_SHA256_BLOCK_SIZE - ctx->fill);
        flt_sha256_block(ctx->h, ctx->block);
        ctx->fill = 0;
    }
    flt_bytes_zero(ctx->block + ctx->fill, 56u - ctx->fill);
    for (i = 0; i < 8u; ++i) {
        ctx->block[56u + i] = (uint8_t)(bits >> (56u - 8u * i));
    }
    flt_sha256_block(ctx->h, ctx->block);
    for (i = 0; i < 8u; ++i) {
        digest[4u * i] = (uint8_t)(ctx->h[i] >> 24);
        digest[4u * i + 1u] = (uint8_t)(ctx->h[i] >> 16);
        digest[4u * i + 2u] = (uint8_t)(ctx->h[i] >> 8);
        digest[4u * i + 3u] = (uint8_t)ctx->h[i];
    }
}

void flt_sha256(const uint8_t *data, size_t len, uint8_t digest[FLT_SHA256_DIGEST_SIZE])
{
    flt_sha256_t ctx;
    flt_sha256_init(&ctx);
    flt_sha256_update(&ctx, data, len);
    flt_sha256_final(&ctx, digest);
}
