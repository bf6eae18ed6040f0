/* chacha20.c - ChaCha20 (RFC 8439); see chacha20.h. */
#include "chacha20.h"

#include "core/flt_bytes.h"

static uint32_t rotl(uint32_t v, unsigned n)
{
    return (v << n) | (v >> (32u - n));
}

/* The quarter round of RFC 8439 section 2.1 on four words of x. */
static void quarter(uint32_t x[16], unsigned a, unsigned b, unsigned c, unsigned d)
{
    x[a] += x[b];
    x[d] = rotl(x[d] ^ x[a], 16);
    x[c] += x[d];
    x[b] = rotl(x[b] ^ x[c], 12);
    x[a] += x[b];
    x[d] = rotl(x[d] ^ x[a], 8);
    x[c] += x[d];
    x[b] = rotl(x[b] ^ x[c], 7);
}

/* out = serialize(state + 20 rounds(state)) (RFC 8439 section 2.3). */
static void block_of_state(const uint32_t state[16], uint8_t out[FLT_CHACHA20_BLOCK_SIZE])
{
    uint32_t x[16];
    for (unsigned i = 0; i < 16; ++i) {
        x[i] = state[i];
    }
    for (unsigned r = 0; r < 10; ++r) {
        quarter(x, 0, 4, 8, 12); /* column rounds */
        quarter(x, 1, 5, 9, 13);
        quarter(x, 2, 6, 10, 14);
        quarter(x, 3, 7, 11, 15);
        quarter(x, 0, 5, 10, 15); /* diagonal rounds */
        quarter(x, 1, 6, 11, 12);
        quarter(x, 2, 7, 8, 13);
        quarter(x, 3, 4, 9, 14);
    }
    for (unsigned i = 0; i < 16; ++i) {
        flt_le_put32(out + 4u * i, x[i] + state[i]);
    }
    flt_bytes_zero(x, sizeof x);
}

static void set_state(uint32_t state[16], const uint8_t key[FLT_CHACHA20_KEY_SIZE],
                      uint32_t counter, const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE])
{
    state[0] = 0x61707865u; /* "expand 32-byte k" */
    state[1] = 0x3320646eu;
    state[2] = 0x79622d32u;
    state[3] = 0x6b206574u;
    for (unsigned i = 0; i < 8; ++i) {
        state[4 + i] = flt_le_get32(key + 4u * i);
    }
    state[12] = counter;
    for (unsigned i = 0; i < 3; ++i) {
        state[13 + i] = flt_le_get32(nonce + 4u * i);
    }
}

void flt_chacha20_block(const uint8_t key[FLT_CHACHA20_KEY_SIZE], uint32_t counter,
                        const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE],
                        uint8_t out[FLT_CHACHA20_BLOCK_SIZE])
{
    uint32_t state[16];
    set_state(state, key, counter, nonce);
    block_of_state(state, out);
    flt_bytes_zero(state, sizeof state);
}

void flt_chacha20_init(flt_chacha20_t *ctx, const uint8_t key[FLT_CHACHA20_KEY_SIZE],
                       const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE], uint32_t counter)
{
    set_state(ctx->state, key, counter, nonce);
    ctx->used = FLT_CHACHA20_BLOCK_SIZE;
    ctx->exhausted = 0;
}

/* FLT_OK when len more bytes fit before the block counter wraps: the blocks they need beyond
 * the rest of the current one, against the counters left (none once block 2^32 - 1 is out). */
static flt_status_t check_room(const flt_chacha20_t *ctx, size_t len)
{
    const size_t left = FLT_CHACHA20_BLOCK_SIZE - ctx->used;
    if (len <= left) {
        return FLT_OK;
    }
    const uint64_t need =
        ((uint64_t)(len - left) + FLT_CHACHA20_BLOCK_SIZE - 1u) / FLT_CHACHA20_BLOCK_SIZE;
    const uint64_t room = ctx->exhausted ? 0u : ((uint64_t)1 << 32) - ctx->state[12];
    return need <= room ? FLT_OK : FLT_ERR_RANGE;
}

static void next_block(flt_chacha20_t *ctx)
{
    block_of_state(ctx->state, ctx->block);
    ctx->state[12] += 1u;
    ctx->exhausted = ctx->state[12] == 0u;
    ctx->used = 0;
}

flt_status_t flt_chacha20_xor(flt_chacha20_t *ctx, const uint8_t *in, uint8_t *out, size_t len)
{
    FLT_TRY(check_room(ctx, len));
    for (size_t i = 0; i < len; ++i) {
        if (ctx->used == FLT_CHACHA20_BLOCK_SIZE) {
            next_block(ctx);
        }
        const uint8_t m = in ? in[i] : 0u;
        out[i] = (uint8_t)(m ^ ctx->block[ctx->used++]);
    }
    return FLT_OK;
}

flt_status_t flt_chacha20_read(flt_chacha20_t *ctx, uint8_t *out, size_t len)
{
    return flt_chacha20_xor(ctx, NULL, out, len);
}

flt_status_t flt_chacha20_u32(flt_chacha20_t *ctx, uint32_t *v)
{
    uint8_t b[4];
    FLT_TRY(flt_chacha20_read(ctx, b, sizeof b));
    *v = flt_le_get32(b);
    return FLT_OK;
}

void flt_chacha20_wipe(flt_chacha20_t *ctx)
{
    flt_bytes_zero(ctx, sizeof *ctx);
}
