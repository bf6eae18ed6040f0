/* client.h - a device's side of secure aggregation (Bonawitz et al. 2017, "Practical Secure
 * Aggregation for Privacy-Preserving Machine Learning", with double masking and Shamir-shared
 * recovery; docs/protocol.md "Secure aggregation"): the state of one device across the
 * messages of a round, BEGIN -> ADVERTISE, COHORT -> SHARES, SHARES in, MASKED, UNMASK ->
 * REVEAL, in static memory.
 *
 * Part of secagg/. Depends on keys.h, shamir.h, box.h, msg.h, input.h, crypto/ and core/.
 *
 * Keys (keys.h): per session (epoch e) a channel key pair c_u; per round r a mask key pair s_u
 * and a self-mask seed b_u, all derived from the device secret that only the device holds
 * (drawn from its TRNG at boot, so a reset starts a new session). The channel secrets with
 * the cohort's members are computed once per session and cached (1 + k X25519 per session);
 * the mask secrets once per round (1 + k X25519 per round). Why the mask key is per round: the
 * recovery of a dropped device reveals its mask secret; a per-session one would unmask every
 * earlier round of that device whose self-mask seed was revealed.
 *
 * Contract
 * - flt_secagg_client_init(c, device_id, secret): a client with no session. Cannot fail
 *   beyond FLT_ERR_ARG for NULL pointers. The client owns a copy of the secret: wipe the
 *   client (flt_secagg_client_wipe) when done.
 * - flt_secagg_begin(c, begin, adv): starts round begin->round of session begin->epoch and
 *   writes the device's ADVERTISE (its channel and mask public keys). A new epoch must be
 *   above the current one and a round above the last round begun in the epoch, else
 *   FLT_ERR_REPLAY (every (epoch, round) keys one round only); the same BEGIN again while the
 *   round has not gone further re-writes the same ADVERTISE.
 * - flt_secagg_cohort(c, cohort): takes the round's cohort (decoded COHORT): round and epoch
 *   those begun, this device listed with the keys it advertised, else FLT_ERR_STATE; a
 *   small-order public key gives FLT_ERR_ARG. Computes the channel secrets it has not cached
 *   and the round's mask secrets with every member.
 * - flt_secagg_deal(c, entries, cap, &count): the SHARES entries for the cohort (one per peer,
 *   id order): peer i's box holds the Shamir shares at x = i + 1 (the position in the cohort,
 *   1-based) of s_u and of b_u, t-of-(n - 1), sealed under the pair's channel secret.
 *   FLT_ERR_NOMEM when cap < (n - 1) * FLT_SA_SHARES_ENTRY. Deterministic: dealing again gives
 *   the same bytes.
 * - flt_secagg_receive(c, shares): stores the shares the peers dealt to this device (decoded
 *   SHARES from the host, entries named by sender). FLT_ERR_STATE for a sender not in the
 *   cohort or this device; FLT_ERR_AUTH for a box that does not open; FLT_ERR_DUPLICATE for a
 *   second, different box from the same sender. Entries before a failing one stay stored.
 * - flt_secagg_mask_input(c, values, k): values (the device's quantized update on the round's
 *   index set, input.h, k = the cohort's K) += the self mask of b_u and the pairwise masks
 *   with every peer whose shares it holds (the server's U2), mod 2^32. FLT_ERR_SHAPE for
 *   another k; FLT_ERR_STATE when fewer than t peers' shares arrived or not in the COHORT
 *   phase (values untouched). Once per round.
 * - flt_secagg_unmask(c, unmask, entries, cap, &count): the REVEAL entries for an UNMASK: for
 *   each listed survivor other than itself the share of its b, for each dropped device the
 *   share of its s, in increasing id order. Refused, revealing nothing and leaving the round
 *   open for a correct UNMASK: FLT_ERR_STATE when this device is not a survivor, fewer than t
 *   survivors are listed, a listed id is not a peer it masked with, or the round is not
 *   masked yet; FLT_ERR_NOMEM when cap is too small. Once answered, the round's secrets and
 *   shares are wiped and a second UNMASK gets FLT_ERR_STATE: a device never reveals both kinds
 *   of share of one peer in one round, so no single update is ever unmasked.
 * - Any other failure (and a refused COHORT) ends the round for this device (FLT_ERR_STATE
 *   until the next BEGIN). Time depends on public sizes and ids only (crypto/ is constant
 *   time). RAM: sizeof(flt_secagg_client_t), 174 bytes per FLT_SECAGG_MAX_COHORT member
 *   plus 264 (3,048 B at 16 on qemu-m4f and qemu-rv32); stack: up to 2.5 KB (deal: a Shamir
 *   share, HKDF and HMAC; X25519 steps 1.5 KB; docs/benchmarks.md).
 */
#ifndef FLT_SECAGG_CLIENT_H
#define FLT_SECAGG_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "crypto/secagg_mask.h"
#include "msg.h"

typedef struct {
    uint32_t id;
    uint8_t pk[32];   /* the member's channel public key */
    uint8_t chan[32]; /* X25519(c_self, pk): keys the boxes of the pair (secret) */
    uint8_t valid;
    uint8_t used; /* in the current cohort */
} flt_secagg_chan_t;

typedef struct {
    flt_secagg_peer_t mask; /* the member's id and X25519(s_self, its mask pk) (secret) */
    uint8_t shares[64];     /* this device's shares of the member's s and b (secret) */
    uint8_t chan_slot;      /* its channel secret in chan[] */
    uint8_t has_shares;
} flt_secagg_member_t;

typedef struct {
    uint32_t device_id;
    uint8_t secret[32];
    uint32_t epoch;
    uint32_t round;
    uint8_t in_epoch, any_round, phase;
    uint8_t chan_sk[32], chan_pk[32];
    uint8_t mask_sk[32], mask_pk[32], self_seed[32];
    uint32_t k, index_seed, qmax;
    float scale;
    uint16_t t, n, self;
    uint8_t w;
    flt_secagg_member_t m[FLT_SECAGG_MAX_COHORT];
    flt_secagg_chan_t chan[FLT_SECAGG_MAX_COHORT];
} flt_secagg_client_t;

FLT_NODISCARD flt_status_t flt_secagg_client_init(flt_secagg_client_t *c, uint32_t device_id,
                                                  const uint8_t secret[32]);
void flt_secagg_client_wipe(flt_secagg_client_t *c);
FLT_NODISCARD flt_status_t flt_secagg_begin(flt_secagg_client_t *c, const flt_sa_begin_t *begin,
                                            flt_sa_advertise_t *adv);
FLT_NODISCARD flt_status_t flt_secagg_cohort(flt_secagg_client_t *c, const flt_sa_cohort_t *cohort);
FLT_NODISCARD flt_status_t flt_secagg_deal(flt_secagg_client_t *c, uint8_t *entries, size_t cap,
                                           uint16_t *count);
FLT_NODISCARD flt_status_t flt_secagg_receive(flt_secagg_client_t *c,
                                              const flt_sa_shares_t *shares);
FLT_NODISCARD flt_status_t flt_secagg_mask_input(flt_secagg_client_t *c, uint32_t *values,
                                                 uint32_t k);
FLT_NODISCARD flt_status_t flt_secagg_unmask(flt_secagg_client_t *c, const flt_sa_unmask_t *unmask,
                                             uint8_t *entries, size_t cap, uint16_t *count);

#endif /* FLT_SECAGG_CLIENT_H */
