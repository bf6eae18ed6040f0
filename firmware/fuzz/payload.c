/* payload.c - libFuzzer harness of the delta payload decoder (flt_payload_decode,
 * firmware/runtime/delta/payload.c), the bytes of every DELTA and GLOBAL delta.
 *
 * Feeds: byte 0 picks the limits (bits 0-1: n_max 16, 1000, 70000 or 2^32 - 1; bit 2: k_max
 * and scales_max 8 instead of 4096); the rest is the payload. Output arrays are heap blocks of
 * exactly the limits' sizes.
 * Asserts, beyond memory safety:
 * - the status is one payload.h lists for decode;
 * - on success the delta satisfies every invariant of flt_sparse_delta_t (flt_delta_check, and
 *   here again: k <= n <= n_max, k <= k_max, scales <= scales_max, indices strictly increasing
 *   below n, values in [-127, 127], scales finite and not negative, a zero scale only with zero
 *   values);
 * - re-encoding in the payload's own index format gives a payload that decodes to the same
 *   delta, and exactly the input when the input's Rice parameters are the encoder's own
 *   (varint and bitmap payloads always: their form is canonical);
 * - flt_delta_apply (what a device does with a GLOBAL delta) on zero parameters of length n
 *   (n <= 70000) writes only the chosen indices, each value * scale, and refuses another
 *   length with FLT_ERR_SHAPE;
 * - encoding in every format (into a buffer of exactly the size flt_payload_section_sizes
 *   predicts) decodes to the same delta; FLT_INDEX_AUTO picks the smallest, which is at most
 *   flt_payload_max_size.
 */
#include "delta/payload.h"
#include "core/flt_bits.h"
#include "core/flt_bytes.h"
#include "fuzz.h"

#define CAP_BIG 4096u
#define CAP_SMALL 8u

typedef struct {
    uint32_t *indices;
    int8_t *values;
    float *scales;
    uint32_t cap;
} arrays_t;

static arrays_t arrays(uint32_t cap)
{
    arrays_t a;
    a.cap = cap;
    a.indices = (uint32_t *)malloc(cap * sizeof *a.indices);
    a.values = (int8_t *)malloc(cap);
    a.scales = (float *)malloc(cap * sizeof *a.scales);
    FUZZ_ASSERT(a.indices != NULL && a.values != NULL && a.scales != NULL);
    return a;
}

static void release(arrays_t *a)
{
    free(a->indices);
    free(a->values);
    free(a->scales);
}

static flt_sparse_delta_t view(const arrays_t *a)
{
    flt_sparse_delta_t d;
    memset(&d, 0, sizeof d);
    d.indices = a->indices;
    d.values = a->values;
    d.scales = a->scales;
    return d;
}

static void same_delta(const flt_sparse_delta_t *a, const flt_sparse_delta_t *b)
{
    uint32_t ns = flt_delta_num_scales(a->k, a->mode, a->block_size);
    FUZZ_ASSERT(a->n == b->n && a->k == b->k && a->mode == b->mode &&
                a->block_size == b->block_size);
    FUZZ_ASSERT(a->k == 0u || (memcmp(a->indices, b->indices, a->k * sizeof *a->indices) == 0 &&
                               memcmp(a->values, b->values, a->k) == 0));
    for (uint32_t j = 0; j < ns; ++j) {
        FUZZ_ASSERT(flt_f32_bits(a->scales[j]) == flt_f32_bits(b->scales[j]));
    }
}

static void invariants(const flt_sparse_delta_t *d, const flt_payload_limits_t *lim)
{
    uint32_t ns = flt_delta_num_scales(d->k, d->mode, d->block_size);
    FUZZ_ASSERT(flt_delta_check(d) == FLT_OK);
    FUZZ_ASSERT(d->n >= 1u && d->n <= lim->n_max && d->k <= d->n && d->k <= lim->k_max &&
                ns <= lim->scales_max);
    FUZZ_ASSERT(d->mode == FLT_QUANT_TENSOR ? d->block_size == 0u
                                            : (d->block_size >= 1u && d->block_size <= 65535u));
    for (uint32_t j = 0; j < d->k; ++j) {
        FUZZ_ASSERT(d->indices[j] < d->n && (j == 0u || d->indices[j] > d->indices[j - 1u]));
        FUZZ_ASSERT(d->values[j] >= -127);
        float s = d->scales[d->mode == FLT_QUANT_TENSOR ? 0u : j / d->block_size];
        FUZZ_ASSERT(s != 0.0f || d->values[j] == 0);
    }
    for (uint32_t j = 0; j < ns; ++j) {
        uint32_t b = flt_f32_bits(d->scales[j]);
        FUZZ_ASSERT(flt_f32_bits_finite(b) && (b & FLT_F32_SIGN_MASK) == 0u);
    }
}

/* Header and scales of d's payload: the bytes before the index section. */
static size_t head_size(const flt_sparse_delta_t *d)
{
    return FLT_PAYLOAD_FIXED_SIZE + flt_varint_len(d->n) + flt_varint_len(d->k) +
           (d->mode == FLT_QUANT_BLOCK ? flt_varint_len(d->block_size) : 0u) +
           4u * (size_t)flt_delta_num_scales(d->k, d->mode, d->block_size);
}

/* Encodes d with format f into a buffer of exactly `cap` bytes and decodes it again: the same
 * delta. Returns the encoded size; *out (when not NULL) receives the bytes (caller frees). */
static size_t round_trip(const flt_sparse_delta_t *d, flt_index_format_t f, size_t cap,
                         uint8_t **out)
{
    uint8_t *buf = (uint8_t *)malloc(cap);
    size_t len = 0;
    FUZZ_ASSERT(buf != NULL);
    FUZZ_ASSERT(flt_payload_encode(d, f, buf, cap, &len) == FLT_OK);
    FUZZ_ASSERT(len <= cap);
    arrays_t a = arrays(d->k > 0u ? d->k : 1u);
    flt_sparse_delta_t back = view(&a);
    flt_payload_limits_t exact = {d->n, d->k, flt_delta_num_scales(d->k, d->mode, d->block_size)};
    FUZZ_ASSERT(flt_payload_decode(buf, len, &exact, &back) == FLT_OK);
    same_delta(d, &back);
    release(&a);
    if (out != NULL) {
        *out = buf;
    } else {
        free(buf);
    }
    return len;
}

/* The delta applied to zero parameters (a heap block of exactly n floats). */
static void check_apply(const flt_sparse_delta_t *d)
{
    float *p = (float *)calloc(d->n, sizeof *p);
    FUZZ_ASSERT(p != NULL);
    FUZZ_ASSERT(flt_delta_apply(d, p, d->n + 1u) == FLT_ERR_SHAPE);
    FUZZ_ASSERT(flt_delta_apply(d, p, d->n) == FLT_OK);
    uint32_t j = 0;
    for (uint32_t i = 0; i < d->n; ++i) {
        float want = 0.0f;
        if (j < d->k && d->indices[j] == i) {
            float s = d->scales[d->mode == FLT_QUANT_TENSOR ? 0u : j / d->block_size];
            want = 0.0f + (float)d->values[j] * s;
            j++;
        }
        FUZZ_ASSERT(flt_f32_bits(p[i]) == flt_f32_bits(want));
    }
    free(p);
}

static int decode_status_ok(flt_status_t s)
{
    return s == FLT_OK || s == FLT_ERR_TRUNCATED || s == FLT_ERR_FORMAT ||
           s == FLT_ERR_UNSUPPORTED || s == FLT_ERR_OVERSIZE || s == FLT_ERR_NONFINITE ||
           s == FLT_ERR_RANGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t n_max[4] = {16u, 1000u, 70000u, 0xFFFFFFFFu};
    if (size < 1u) {
        return 0;
    }
    uint32_t cap = (data[0] & 4u) ? CAP_SMALL : CAP_BIG;
    flt_payload_limits_t lim = {n_max[data[0] & 3u], cap, cap};
    const uint8_t *buf = data + 1;
    size_t len = size - 1u;
    arrays_t a = arrays(cap);
    flt_sparse_delta_t d = view(&a);
    flt_status_t s = flt_payload_decode(buf, len, &lim, &d);
    FUZZ_ASSERT(decode_status_ok(s));
    if (s != FLT_OK) {
        release(&a);
        return 0;
    }
    invariants(&d, &lim);
    if (d.n <= 70000u) {
        check_apply(&d);
    }

    /* the payload's own format: the same delta; the same bytes when the parameters agree */
    uint64_t sizes[FLT_INDEX_FORMATS];
    FUZZ_ASSERT(flt_payload_section_sizes(&d, sizes, NULL) == FLT_OK);
    size_t head = head_size(&d);
    flt_index_format_t own = (flt_index_format_t)(buf[0] & 3u);
    uint8_t *again = NULL;
    size_t n = round_trip(&d, own, head + (size_t)sizes[own], &again);
    /* the Rice parameters (byte 1: r, and vr in format RICE_VALUES), and qmin after the
     * scales in format RICE_VALUES */
    int same_params = again[1] == buf[1];
    if (own == FLT_INDEX_RICE_VALUES) {
        same_params = same_params && again[head] == buf[head];
    }
    if (own == FLT_INDEX_VARINT || own == FLT_INDEX_BITMAP || same_params) {
        FUZZ_ASSERT(n == len && memcmp(again, buf, len) == 0);
    }
    free(again);

    /* every format (into a buffer of exactly the predicted size), and the automatic choice */
    size_t smallest = SIZE_MAX;
    for (uint32_t f = 0; f < FLT_INDEX_FORMATS; ++f) {
        if (sizes[f] > (uint64_t)(1u << 20)) {
            continue; /* a bitmap of a huge n: the other formats are smaller */
        }
        size_t want = head + (size_t)sizes[f];
        FUZZ_ASSERT(round_trip(&d, (flt_index_format_t)f, want, NULL) == want);
        smallest = want < smallest ? want : smallest;
    }
    FUZZ_ASSERT(smallest <= flt_payload_max_size(d.n, d.k, d.mode, d.block_size));
    FUZZ_ASSERT(round_trip(&d, FLT_INDEX_AUTO, smallest, NULL) == smallest);
    release(&a);
    return 0;
}
