/* secagg_mask.c - pairwise masks mod 2^32 for secure aggregation; see secagg_mask.h. */
#include "secagg_mask.h"

#include "chacha20.h"
#include "core/flt_bytes.h"
#include "hkdf.h"

static const uint8_t kSalt[] = "fltiny secagg v1"; /* 16 bytes, without the NUL */

flt_status_t flt_secagg_pair_key(const uint8_t shared[32], uint32_t round, uint32_t a, uint32_t b,
                                 uint8_t key[FLT_SECAGG_KEY_SIZE])
{
    FLT_REQUIRE(a != b, FLT_ERR_ARG);
    uint8_t info[16] = {'m', 'a', 's', 'k'};
    flt_le_put32(info + 4, round);
    flt_le_put32(info + 8, a < b ? a : b);
    flt_le_put32(info + 12, a < b ? b : a);
    return flt_hkdf(kSalt, sizeof kSalt - 1u, shared, 32, info, sizeof info, key,
                    FLT_SECAGG_KEY_SIZE);
}

flt_status_t flt_secagg_mask(uint32_t self_id, uint32_t round, const flt_secagg_peer_t *peers,
                             uint32_t n_peers, uint32_t *values, uint32_t k)
{
    FLT_REQUIRE(k <= FLT_SECAGG_MAX_VALUES, FLT_ERR_RANGE);
    FLT_REQUIRE(values != NULL || k == 0u, FLT_ERR_ARG);
    FLT_REQUIRE(peers != NULL || n_peers == 0u, FLT_ERR_ARG);
    static const uint8_t nonce[FLT_CHACHA20_NONCE_SIZE] = {0};
    uint8_t key[FLT_SECAGG_KEY_SIZE];
    flt_chacha20_t ks;
    flt_status_t s = FLT_OK;
    for (uint32_t p = 0; p < n_peers && s == FLT_OK; ++p) {
        s = flt_secagg_pair_key(peers[p].shared, round, self_id, peers[p].id, key);
        if (s != FLT_OK) {
            break;
        }
        flt_chacha20_init(&ks, key, nonce, 0);
        const int add = peers[p].id > self_id; /* public: the ids of the round */
        for (uint32_t j = 0; j < k; ++j) {
            uint32_t m;
            s = flt_chacha20_u32(&ks, &m); /* k <= 2^30 words: 2^26 blocks, no wrap */
            if (s != FLT_OK) {
                break;
            }
            values[j] = add ? values[j] + m : values[j] - m; /* mod 2^32 */
        }
    }
    flt_bytes_zero(key, sizeof key);
    flt_chacha20_wipe(&ks);
    return s;
}
