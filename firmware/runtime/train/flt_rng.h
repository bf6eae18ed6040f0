/* flt_rng.h - deterministic PRNG (PCG32) and Fisher-Yates shuffle.
 *
 * Contract
 * - What: PCG32, "XSH RR" output of a 64-bit LCG (M. E. O'Neill, "PCG: A Family of Simple
 *   Fast Space-Efficient Statistically Good Algorithms for Random Number Generation", 2014):
 *     state' = state * 6364136223846793005 + inc       (mod 2^64, inc odd)
 *     out    = rotr32((uint32)(((state >> 18) ^ state) >> 27), state >> 59)   (old state)
 *   Seeding (pcg32_srandom_r): inc = (stream << 1) | 1; state = 0; step; state += seed; step.
 *   With seed 42, stream 54 the first outputs are 0xa15c02b7 0x7b47f409 0xba1d3330 (the PCG
 *   reference demo). The Python twin (fltiny.twins.train.Pcg32) produces the same sequence.
 * - flt_rng_bounded: unbiased integer in [0, bound) by rejection: threshold = 2^32 mod bound;
 *   draw r until r >= threshold; return r % bound.
 * - flt_shuffle_u32: Fisher-Yates, for i = n-1 down to 1: j = bounded(i+1); swap(a[i], a[j]).
 * - Buffers: the caller owns the flt_rng_t and the arrays. No allocation, no global state.
 * - Bad input: NULL pointers -> FLT_ERR_ARG, bound 0 -> FLT_ERR_RANGE; nothing is modified
 *   on failure.
 */
#ifndef FLT_TRAIN_RNG_H
#define FLT_TRAIN_RNG_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    uint64_t state;
    uint64_t inc;
} flt_rng_t;

/* The stream the training loop uses: "fltiny" in ASCII. */
#define FLT_TRAIN_RNG_STREAM UINT64_C(0x666c74696e79)

FLT_NODISCARD flt_status_t flt_rng_seed(flt_rng_t *rng, uint64_t seed, uint64_t stream);
/* Next 32-bit output. rng must be seeded (not NULL). */
uint32_t flt_rng_next_u32(flt_rng_t *rng);
FLT_NODISCARD flt_status_t flt_rng_bounded(flt_rng_t *rng, uint32_t bound, uint32_t *out);
/* Uniform float in [0, 1): (next >> 8) * 2^-24 (exact, 24 random bits). */
float flt_rng_uniform(flt_rng_t *rng);
/* Fisher-Yates shuffle of a[0..n) in place (n 0 or 1: no draws). */
FLT_NODISCARD flt_status_t flt_shuffle_u32(flt_rng_t *rng, uint32_t *a, uint32_t n);

#endif /* FLT_TRAIN_RNG_H */
