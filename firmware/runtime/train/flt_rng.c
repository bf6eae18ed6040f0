/* flt_rng.c - see flt_rng.h. */
#include "train/flt_rng.h"

#include <stddef.h>

#define FLT_PCG_MULT UINT64_C(6364136223846793005)

static void flt_rng_step(flt_rng_t *rng)
{
    rng->state = rng->state * FLT_PCG_MULT + rng->inc;
}

flt_status_t flt_rng_seed(flt_rng_t *rng, uint64_t seed, uint64_t stream)
{
    FLT_REQUIRE(rng != NULL, FLT_ERR_ARG);
    rng->state = 0u;
    rng->inc = (stream << 1) | 1u;
    flt_rng_step(rng);
    rng->state += seed;
    flt_rng_step(rng);
    return FLT_OK;
}

uint32_t flt_rng_next_u32(flt_rng_t *rng)
{
    uint64_t old = rng->state;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    flt_rng_step(rng);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

flt_status_t flt_rng_bounded(flt_rng_t *rng, uint32_t bound, uint32_t *out)
{
    uint32_t threshold;
    uint32_t r;
    FLT_REQUIRE(rng != NULL && out != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(bound != 0u, FLT_ERR_RANGE);
    threshold = (0u - bound) % bound; /* 2^32 mod bound */
    /* terminates: the probability of a rejection is below 1/2 */
    do {
        r = flt_rng_next_u32(rng);
    } while (r < threshold);
    *out = r % bound;
    return FLT_OK;
}

float flt_rng_uniform(flt_rng_t *rng)
{
    return (float)(flt_rng_next_u32(rng) >> 8) * 0x1p-24f;
}

flt_status_t flt_shuffle_u32(flt_rng_t *rng, uint32_t *a, uint32_t n)
{
    uint32_t i;
    FLT_REQUIRE(rng != NULL && (a != NULL || n == 0u), FLT_ERR_ARG);
    for (i = n; i > 1u; --i) {
        uint32_t j;
        uint32_t tmp;
        FLT_TRY(flt_rng_bounded(rng, i, &j)); /* j in [0, i), swap with position i-1 */
        tmp = a[i - 1u];
        a[i - 1u] = a[j];
        a[j] = tmp;
    }
    return FLT_OK;
}
