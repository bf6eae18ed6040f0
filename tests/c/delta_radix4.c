/* delta_radix4.c - the top-k radix select with FLT_DELTA_RADIX_BITS = 4 (the 64-byte-stack
 * variant) against a brute-force reference: for every i, i is selected iff fewer than k
 * entries beat it (larger magnitude key, or equal key and lower index).
 * Built with build_executable(components=[]) because it compiles delta.c itself.
 *
 *   delta_radix4 <seed>      exit status 0 on success
 */
#define FLT_DELTA_RADIX_BITS 4
#include "delta/delta.c"

#include <stdio.h>
#include <stdlib.h>

#define N_MAX 600u

static uint32_t state;

static uint32_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

int main(int argc, char **argv)
{
    static float acc[N_MAX];
    static uint32_t idx[N_MAX];
    static uint8_t chosen[N_MAX];
    uint32_t trial;
    state = (argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1u) | 1u;
    for (trial = 0; trial < 300u; ++trial) {
        uint32_t n = 1u + rnd() % N_MAX;
        uint32_t k = rnd() % (n + 1u);
        uint32_t i;
        uint32_t j;
        for (i = 0; i < n; ++i) {
            uint32_t r = rnd();
            /* few distinct values (ties) or arbitrary finite bit patterns */
            acc[i] = (trial % 2u) ? (float)((int32_t)(r % 9u) - 4) * 0.5f
                                  : flt_f32_from_bits(r & 0xff7fffffu);
        }
        if (flt_delta_topk(acc, n, k, idx) != FLT_OK) {
            printf("FAIL status trial %lu\n", (unsigned long)trial);
            return 1;
        }
        for (i = 0; i < n; ++i) {
            chosen[i] = 0u;
        }
        for (j = 0; j < k; ++j) {
            if (j > 0u && idx[j] <= idx[j - 1u]) {
                printf("FAIL order trial %lu\n", (unsigned long)trial);
                return 1;
            }
            chosen[idx[j]] = 1u;
        }
        for (i = 0; i < n; ++i) {
            uint32_t beaten_by = 0u; /* <= n */
            uint32_t ki = flt_mag_key(acc[i]);
            for (j = 0; j < n; ++j) {
                uint32_t kj = flt_mag_key(acc[j]);
                if (kj > ki || (kj == ki && j < i)) {
                    beaten_by += 1u;
                }
            }
            if ((beaten_by < k) != (chosen[i] != 0u)) {
                printf("FAIL selection trial %lu index %lu\n", (unsigned long)trial,
                       (unsigned long)i);
                return 1;
            }
        }
    }
    printf("ok\n");
    return 0;
}
