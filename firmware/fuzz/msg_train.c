/* msg_train.c - libFuzzer harness of the TRAIN decoder (flt_msg_train_decode, messages.c).
 *
 * Feeds: the whole input as a TRAIN payload.
 * Asserts, beyond memory safety:
 * - the status is one the contract lists (OK, TRUNCATED, FORMAT, UNSUPPORTED, RANGE,
 *   NONFINITE) and equals flt_msg_check(FLT_MSG_TRAIN, ...);
 * - on success every field is in the range messages.h gives it (epochs and batch size >= 1,
 *   learning rate finite and > 0, momentum in [0, 1), prox_mu and clip finite and >= 0, top-k
 *   count >= 1 or fraction in (0, 1], known flags only, a value width of 0 or 2..8 bits; with
 *   LOCAL_DP the input is 44 bytes and ldp_clip, ldp_noise finite and > 0, without it 36 bytes
 *   and both 0), and encoding the message gives back exactly the input; a buffer one byte too
 *   small gives FLT_ERR_NOMEM.
 */
#include "core/flt_bits.h"
#include "fuzz.h"
#include "proto/messages.h"

static int finite(float x)
{
    return flt_f32_bits_finite(flt_f32_bits(x));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flt_msg_train_t m;
    flt_status_t s = flt_msg_train_decode(data, size, &m);
    FUZZ_ASSERT(s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
                s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_RANGE || s == FLT_ERR_NONFINITE);
    FUZZ_ASSERT(s == flt_msg_check(FLT_MSG_TRAIN, data, size));
    if (s != FLT_OK) {
        return 0;
    }
    FUZZ_ASSERT(m.epochs >= 1u && m.batch_size >= 1u);
    FUZZ_ASSERT(finite(m.learning_rate) && m.learning_rate > 0.0f);
    FUZZ_ASSERT(finite(m.momentum) && m.momentum >= 0.0f && m.momentum < 1.0f);
    FUZZ_ASSERT(finite(m.prox_mu) && m.prox_mu >= 0.0f && finite(m.clip) && m.clip >= 0.0f);
    if (m.topk_kind == FLT_TOPK_COUNT) {
        FUZZ_ASSERT(m.topk_count >= 1u);
    } else {
        FUZZ_ASSERT(m.topk_kind == FLT_TOPK_FRACTION && finite(m.topk_fraction) &&
                    m.topk_fraction > 0.0f && m.topk_fraction <= 1.0f);
    }
    uint32_t bits = (m.flags & FLT_TRAIN_BITS_MASK) >> FLT_TRAIN_BITS_SHIFT;
    FUZZ_ASSERT((m.flags & ~FLT_TRAIN_FLAGS_KNOWN) == 0u &&
                (bits == 0u || (bits >= 2u && bits <= 8u)));
    if ((m.flags & FLT_TRAIN_LOCAL_DP) != 0u) {
        FUZZ_ASSERT(size == FLT_MSG_TRAIN_LDP_SIZE && finite(m.ldp_clip) && m.ldp_clip > 0.0f &&
                    finite(m.ldp_noise) && m.ldp_noise > 0.0f);
    } else {
        FUZZ_ASSERT(size == FLT_MSG_TRAIN_SIZE && m.ldp_clip == 0.0f && m.ldp_noise == 0.0f);
    }
    uint8_t out[FLT_MSG_TRAIN_MAX_SIZE];
    size_t len = 0;
    FUZZ_ASSERT(flt_msg_train_encode(&m, out, sizeof out, &len) == FLT_OK);
    FUZZ_ASSERT(len == size && memcmp(out, data, size) == 0);
    FUZZ_ASSERT(flt_msg_train_encode(&m, out, size - 1u, &len) == FLT_ERR_NOMEM);
    return 0;
}
