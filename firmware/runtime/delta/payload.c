/* payload.c - see payload.h for the contract and docs/protocol.md for the byte layout. */
#include "payload.h"

#include "core/flt_bytes.h"

/* Gap of entry j: idx[j] - idx[j-1] with idx[-1] = -1, so >= 1 for valid deltas and <= n. */
static uint32_t flt_gap(const uint32_t *idx, uint32_t j)
{
    return (j == 0u) ? idx[0] + 1u : idx[j] - idx[j - 1u];
}

/* Bits of the Rice section with parameter r. Range: each term <= 2^32 / 2^r + 32, k < 2^32
 * terms, so the sum < 2^32 * 33 + 2^32 < 2^64 (the quotient parts sum to <= S >> r). */
static uint64_t flt_rice_bits(const uint32_t *idx, uint32_t k, uint32_t r)
{
    uint64_t bits = 0u;
    uint32_t j;
    for (j = 0; j < k; ++j) {
        uint32_t u = flt_gap(idx, j) - 1u;
        bits += (uint64_t)(u >> r) + 1u + r;
    }
    return bits;
}

/* Rice parameter: r0 = largest r <= 31 with k * 2^r <= S where S = sum of (gap - 1)
 * = idx[k-1] + 1 - k (so 2^r0 <= mean < 2^(r0+1)); 0 when S < k. If r0 > 0 and r0 - 1 costs
 * no more bits than r0, r0 - 1 is used. */
static uint32_t flt_rice_param(const uint32_t *idx, uint32_t k)
{
    uint64_t s;
    uint32_t r = 0u;
    if (k == 0u) {
        return 0u;
    }
    s = (uint64_t)idx[k - 1u] + 1u - k;
    while (r < FLT_PAYLOAD_MAX_RICE && ((uint64_t)k << (r + 1u)) <= s) {
        r += 1u;
    }
    if (r > 0u && flt_rice_bits(idx, k, r - 1u) <= flt_rice_bits(idx, k, r)) {
        r -= 1u;
    }
    return r;
}

static flt_status_t flt_encode_check(const flt_sparse_delta_t *d)
{
    uint32_t j;
    FLT_TRY(flt_delta_check(d));
    for (j = 0; j < d->k; ++j) {
        float s = d->scales[(d->mode == FLT_QUANT_TENSOR) ? 0u : j / d->block_size];
        FLT_REQUIRE(s != 0.0f || d->values[j] == 0, FLT_ERR_ARG);
    }
    FLT_REQUIRE(d->n >= 1u, FLT_ERR_ARG);
    return FLT_OK;
}

static uint32_t flt_abs_q(int8_t v)
{
    return (uint32_t)(v < 0 ? -(int32_t)v : (int32_t)v);
}

/* Bits of the Rice-coded values (format RICE_VALUES) with parameter r and offset qmin: per
 * value (|q| - qmin) >> r one-bits, a zero-bit, r low bits, and a sign bit when q != 0. */
static uint64_t flt_value_bits(const int8_t *values, uint32_t k, uint32_t qmin, uint32_t r)
{
    uint64_t bits = 0u;
    uint32_t j;
    for (j = 0; j < k; ++j) {
        uint32_t a = flt_abs_q(values[j]);
        bits += (uint64_t)((a - qmin) >> r) + 1u + r + (a != 0u ? 1u : 0u);
    }
    return bits;
}

/* The value code of format RICE_VALUES: qmin = the smallest |q| (0 when k == 0), r the
 * parameter in 0..FLT_PAYLOAD_MAX_VALUE_RICE with the fewest bits (ties to the smaller). */
static uint64_t flt_value_code(const int8_t *values, uint32_t k, uint32_t *qmin, uint32_t *r)
{
    uint64_t best;
    uint32_t j;
    uint32_t m = 127u;
    for (j = 0; j < k; ++j) {
        uint32_t a = flt_abs_q(values[j]);
        m = a < m ? a : m;
    }
    *qmin = (k == 0u) ? 0u : m;
    *r = 0u;
    best = flt_value_bits(values, k, *qmin, 0u);
    for (j = 1u; j <= FLT_PAYLOAD_MAX_VALUE_RICE; ++j) {
        uint64_t bits = flt_value_bits(values, k, *qmin, j);
        if (bits < best) {
            best = bits;
            *r = j;
        }
    }
    return best;
}

flt_status_t flt_payload_section_sizes(const flt_sparse_delta_t *d,
                                       uint64_t sizes[FLT_INDEX_FORMATS], uint8_t *rice_param)
{
    uint64_t varint = 0u;
    uint64_t rice_bits;
    uint32_t j;
    uint32_t r;
    uint32_t qmin;
    uint32_t vr;
    FLT_REQUIRE(sizes != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_encode_check(d));
    /* Range: k <= 2^32 terms of at most 5 bytes < 2^35. */
    for (j = 0; j < d->k; ++j) {
        varint += flt_varint_len(flt_gap(d->indices, j));
    }
    r = flt_rice_param(d->indices, d->k);
    rice_bits = flt_rice_bits(d->indices, d->k, r);
    sizes[FLT_INDEX_VARINT] = varint + d->k;
    sizes[FLT_INDEX_BITMAP] = ((uint64_t)d->n + 7u) / 8u + d->k;
    sizes[FLT_INDEX_RICE] = (rice_bits + 7u) / 8u + d->k;
    sizes[FLT_INDEX_RICE_VALUES] =
        1u + (rice_bits + flt_value_code(d->values, d->k, &qmin, &vr) + 7u) / 8u;
    if (rice_param != NULL) {
        *rice_param = (uint8_t)r;
    }
    return FLT_OK;
}

/* Header bytes: the fixed part, varints n and k, and the block size in block mode. */
static uint32_t flt_header_size(uint32_t n, uint32_t k, flt_quant_mode_t mode, uint32_t block_size)
{
    return FLT_PAYLOAD_FIXED_SIZE + flt_varint_len(n) + flt_varint_len(k) +
           (mode == FLT_QUANT_BLOCK ? flt_varint_len(block_size) : 0u);
}

size_t flt_payload_max_size(uint32_t n, uint32_t k, flt_quant_mode_t mode, uint32_t block_size)
{
    uint64_t total = flt_header_size(n, k, mode, block_size);
    total += 4u * (uint64_t)flt_delta_num_scales(k, mode, block_size);
    total += ((uint64_t)n + 7u) / 8u;
    total += k;
    return (total > (uint64_t)SIZE_MAX) ? SIZE_MAX : (size_t)total;
}

/* MSB-first bit writer into a buffer already known to be large enough and zeroed. */
typedef struct {
    uint8_t *buf;
    size_t pos;   /* byte */
    uint32_t bit; /* 0..7, bits used in buf[pos] */
} flt_bitw_t;

static void flt_bitw_put(flt_bitw_t *w, uint32_t bit)
{
    if (bit) {
        w->buf[w->pos] = (uint8_t)(w->buf[w->pos] | (0x80u >> w->bit));
    }
    w->bit += 1u;
    if (w->bit == 8u) {
        w->bit = 0u;
        w->pos += 1u;
    }
}

static void flt_rice_put(flt_bitw_t *w, uint32_t u, uint32_t r)
{
    uint32_t q = u >> r;
    uint32_t b;
    while (q-- > 0u) {
        flt_bitw_put(w, 1u);
    }
    flt_bitw_put(w, 0u);
    for (b = r; b > 0u; --b) {
        flt_bitw_put(w, (u >> (b - 1u)) & 1u);
    }
}

flt_status_t flt_payload_encode(const flt_sparse_delta_t *d, flt_index_format_t format,
                                uint8_t *out, size_t cap, size_t *out_len)
{
    uint64_t sizes[FLT_INDEX_FORMATS];
    uint8_t rice = 0u;
    uint64_t total;
    uint32_t hdr;
    uint32_t ns;
    uint32_t j;
    uint32_t f;
    size_t pos;
    flt_index_format_t fmt = format;

    FLT_REQUIRE(out_len != NULL, FLT_ERR_ARG);
    FLT_REQUIRE((uint32_t)format < FLT_INDEX_FORMATS || format == FLT_INDEX_AUTO, FLT_ERR_ARG);
    FLT_TRY(flt_payload_section_sizes(d, sizes, &rice));
    if (fmt == FLT_INDEX_AUTO) {
        fmt = FLT_INDEX_VARINT;
        for (f = 1u; f < FLT_INDEX_FORMATS; ++f) {
            if (sizes[f] < sizes[fmt]) {
                fmt = (flt_index_format_t)f;
            }
        }
    }
    ns = flt_delta_num_scales(d->k, d->mode, d->block_size);
    hdr = flt_header_size(d->n, d->k, d->mode, d->block_size);
    total = hdr + 4u * (uint64_t)ns + sizes[fmt];
    FLT_REQUIRE(out != NULL && total <= (uint64_t)cap, FLT_ERR_NOMEM);
    for (pos = 0; pos < (size_t)total; ++pos) {
        out[pos] = 0u;
    }

    out[0] = (uint8_t)((FLT_PAYLOAD_VERSION << 4) | ((uint32_t)d->mode << 2) | (uint32_t)fmt);
    if (fmt == FLT_INDEX_RICE_VALUES) {
        uint32_t qmin;
        uint32_t vr;
        (void)flt_value_code(d->values, d->k, &qmin, &vr);
        out[1] = (uint8_t)(rice | (vr << 5));
    } else {
        out[1] = (fmt == FLT_INDEX_RICE) ? rice : 0u;
    }
    pos = FLT_PAYLOAD_FIXED_SIZE;
    pos += flt_varint_put(out + pos, d->n);
    pos += flt_varint_put(out + pos, d->k);
    if (d->mode == FLT_QUANT_BLOCK) {
        pos += flt_varint_put(out + pos, d->block_size);
    }
    for (j = 0; j < ns; ++j) {
        flt_le_put_f32(out + pos, d->scales[j]);
        pos += 4u;
    }

    if (fmt == FLT_INDEX_VARINT) {
        for (j = 0; j < d->k; ++j) {
            pos += flt_varint_put(out + pos, flt_gap(d->indices, j));
        }
    } else if (fmt == FLT_INDEX_BITMAP) {
        for (j = 0; j < d->k; ++j) {
            uint32_t i = d->indices[j];
            out[pos + i / 8u] = (uint8_t)(out[pos + i / 8u] | (1u << (i % 8u)));
        }
        pos += (size_t)(((uint64_t)d->n + 7u) / 8u);
    } else if (fmt == FLT_INDEX_RICE) {
        flt_bitw_t w;
        w.buf = out;
        w.pos = pos;
        w.bit = 0u;
        for (j = 0; j < d->k; ++j) {
            flt_rice_put(&w, flt_gap(d->indices, j) - 1u, rice);
        }
        pos = w.pos + (w.bit != 0u ? 1u : 0u);
    } else {
        flt_bitw_t w;
        uint32_t qmin;
        uint32_t vr;
        (void)flt_value_code(d->values, d->k, &qmin, &vr);
        out[pos++] = (uint8_t)qmin; /* vr is in the header's second byte */
        w.buf = out;
        w.pos = pos;
        w.bit = 0u;
        for (j = 0; j < d->k; ++j) {
            uint32_t a = flt_abs_q(d->values[j]);
            flt_rice_put(&w, flt_gap(d->indices, j) - 1u, rice);
            flt_rice_put(&w, a - qmin, vr);
            if (a != 0u) {
                flt_bitw_put(&w, d->values[j] < 0 ? 1u : 0u);
            }
        }
        pos = w.pos + (w.bit != 0u ? 1u : 0u);
    }
    if (fmt != FLT_INDEX_RICE_VALUES) {
        for (j = 0; j < d->k; ++j) {
            out[pos++] = (uint8_t)d->values[j];
        }
    }
    *out_len = pos;
    return (pos == (size_t)total) ? FLT_OK : FLT_ERR_STATE; /* FLT_ERR_STATE is unreachable */
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} flt_reader_t;

/* Appends index prev + gap; gap >= 1 is required by the caller. Checks < n and capacity. */
static flt_status_t flt_push_index(flt_sparse_delta_t *out, uint32_t count, int64_t *prev,
                                   uint64_t gap)
{
    int64_t idx = *prev + (int64_t)gap; /* -1 <= prev < 2^32 and 1 <= gap <= 2^32 */
    FLT_REQUIRE(idx < (int64_t)out->n, FLT_ERR_RANGE);
    out->indices[count] = (uint32_t)idx;
    *prev = idx;
    return FLT_OK;
}

static flt_status_t flt_decode_varint(flt_reader_t *r, flt_sparse_delta_t *out)
{
    uint32_t j;
    int64_t prev = -1;
    for (j = 0; j < out->k; ++j) {
        uint32_t v;
        FLT_TRY(flt_varint_get(r->buf, r->len, &r->pos, &v));
        FLT_REQUIRE(v != 0u, FLT_ERR_FORMAT); /* not strictly increasing */
        FLT_TRY(flt_push_index(out, j, &prev, v));
    }
    return FLT_OK;
}

static flt_status_t flt_decode_bitmap(flt_reader_t *r, flt_sparse_delta_t *out)
{
    size_t nbytes = (size_t)(((uint64_t)out->n + 7u) / 8u);
    size_t b;
    uint32_t count = 0u;
    FLT_REQUIRE(r->len - r->pos >= nbytes, FLT_ERR_TRUNCATED);
    for (b = 0; b < nbytes; ++b) {
        uint32_t byte = r->buf[r->pos + b];
        uint32_t bit;
        for (bit = 0; bit < 8u && byte != 0u; ++bit) {
            if (byte & (1u << bit)) {
                uint64_t i = (uint64_t)b * 8u + bit;
                FLT_REQUIRE(i < out->n, FLT_ERR_FORMAT);     /* padding bit set */
                FLT_REQUIRE(count < out->k, FLT_ERR_FORMAT); /* more bits than k */
                out->indices[count++] = (uint32_t)i;
                byte &= ~(1u << bit);
            }
        }
    }
    FLT_REQUIRE(count == out->k, FLT_ERR_FORMAT);
    r->pos += nbytes;
    return FLT_OK;
}

static flt_status_t flt_read_bit(flt_reader_t *r, uint32_t *bitpos, uint32_t *bit)
{
    FLT_REQUIRE(r->pos < r->len, FLT_ERR_TRUNCATED);
    *bit = (uint32_t)(r->buf[r->pos] >> (7u - *bitpos)) & 1u;
    *bitpos += 1u;
    if (*bitpos == 8u) {
        *bitpos = 0u;
        r->pos += 1u;
    }
    return FLT_OK;
}

/* One Rice code with parameter rice whose value is at most umax (else FLT_ERR_RANGE; a unary
 * run longer than umax >> rice is out of range at once, which also bounds the loop
 * independently of the input). */
static flt_status_t flt_read_rice(flt_reader_t *r, uint32_t *bitpos, uint32_t rice, uint32_t umax,
                                  uint64_t *u)
{
    uint32_t q = 0u;
    uint32_t bit;
    uint32_t b;
    uint32_t qmax = umax >> rice;
    for (;;) {
        FLT_TRY(flt_read_bit(r, bitpos, &bit));
        if (bit == 0u) {
            break;
        }
        q += 1u;
        FLT_REQUIRE(q <= qmax, FLT_ERR_RANGE);
    }
    *u = (uint64_t)q << rice; /* < 2^32 because q <= qmax */
    for (b = rice; b > 0u; --b) {
        FLT_TRY(flt_read_bit(r, bitpos, &bit));
        *u |= (uint64_t)bit << (b - 1u);
    }
    FLT_REQUIRE(*u <= umax, FLT_ERR_RANGE);
    return FLT_OK;
}

/* Leading zero bits of x != 0. */
static uint32_t flt_clz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return (uint32_t)__builtin_clzll(x);
#else
    uint32_t n = 0u;
    while ((x & 0x8000000000000000u) == 0u) {
        x <<= 1;
        n += 1u;
    }
    return n;
#endif
}

/* A bit cursor for the Rice formats, the fast path of flt_read_rice / flt_read_bit with the
 * same results and the same first failure. `acc` holds the stream's next bits MSB first,
 * starting at bit 8 * pos - have (pos: the next byte to load); the top `have` (<= 63) bits are
 * counted, the bits below them are further stream bits or zeros (a prefix of stream bits,
 * then zeros), never anything else. A code is taken from the cursor only when it lies inside
 * the counted bits; otherwise the cursor is synced back to the reader's (pos, bitpos) and the
 * bit reader above decides, so the rules have one definition. */
typedef struct {
    uint64_t acc;
    uint32_t have;
    size_t pos;
} flt_bitcur_t;

static void flt_cur_fill(flt_bitcur_t *c, const flt_reader_t *r)
{
    if (r->len - c->pos >= 8u) {
        const uint8_t *p = r->buf + c->pos;
        uint64_t w = ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
                     ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
                     ((uint64_t)p[6] << 8) | (uint64_t)p[7];
        uint32_t whole = (63u - c->have) / 8u; /* bytes that fit: have stays <= 63 */
        c->acc |= w >> c->have;                /* the same stream bits where acc already had some */
        c->pos += whole;
        c->have += 8u * whole;
    } else {
        while (c->have <= 55u && c->pos < r->len) {
            c->acc |= (uint64_t)r->buf[c->pos++] << (56u - c->have);
            c->have += 8u;
        }
    }
}

/* The cursor at the reader's position (pos, bitpos). */
static void flt_cur_reset(flt_bitcur_t *c, const flt_reader_t *r, uint32_t bitpos)
{
    c->acc = 0u;
    c->have = 0u;
    c->pos = r->pos;
    flt_cur_fill(c, r);
    if (c->have >= bitpos) { /* else the reader is at the end (bitpos is then 0) */
        c->acc <<= bitpos;
        c->have -= bitpos;
    }
}

/* The reader's (pos, bitpos) at the cursor. */
static void flt_cur_sync(const flt_bitcur_t *c, flt_reader_t *r, uint32_t *bitpos)
{
    size_t at = 8u * c->pos - c->have;
    r->pos = at / 8u;
    *bitpos = (uint32_t)(at % 8u);
}

/* The cursor's slow path: the bit reader reads the code from the cursor's position. */
static flt_status_t flt_cur_rice_bits(flt_bitcur_t *c, flt_reader_t *r, uint32_t rice,
                                      uint32_t umax, uint64_t *u)
{
    uint32_t bitpos;
    flt_cur_sync(c, r, &bitpos);
    FLT_TRY(flt_read_rice(r, &bitpos, rice, umax, u));
    flt_cur_reset(c, r, bitpos);
    return FLT_OK;
}

/* One Rice code as flt_read_rice. The q leading ones of acc are stream bits (acc is a stream
 * prefix then zeros), so q > umax >> rice fails where the bit reader would, at its
 * (qmax + 1)-th one. A code longer than the counted bits goes to the bit reader. */
#define FLT_CUR_RICE(c, r, rice, umax, u)                                                    \
    do {                                                                                     \
        uint64_t inv_ = ~(c)->acc;                                                           \
        uint32_t q_ = (inv_ != 0u) ? flt_clz64(inv_) : 64u;                                  \
        uint32_t used_ = q_ + 1u + (rice);                                                   \
        FLT_REQUIRE(q_ <= ((umax) >> (rice)), FLT_ERR_RANGE);                                \
        if (used_ <= (c)->have) {                                                            \
            /* q + 1 <= used <= have <= 63, so every shift is below 64 */                    \
            uint64_t low_ = ((rice) == 0u) ? 0u : ((c)->acc << (q_ + 1u)) >> (64u - (rice)); \
            *(u) = ((uint64_t)q_ << (rice)) | low_;                                          \
            FLT_REQUIRE(*(u) <= (umax), FLT_ERR_RANGE);                                      \
            (c)->acc <<= used_;                                                              \
            (c)->have -= used_;                                                              \
        } else {                                                                             \
            FLT_TRY(flt_cur_rice_bits((c), (r), (rice), (umax), (u)));                       \
        }                                                                                    \
    } while (0)

/* Formats RICE (values == 0: the gaps only) and RICE_VALUES (values == 1: each gap followed
 * by its value code; vr from the header, qmin from the byte before the bit stream). */
static flt_status_t flt_decode_rice(flt_reader_t *r, uint32_t rice, uint32_t vr, int values,
                                    flt_sparse_delta_t *out)
{
    uint32_t j;
    uint32_t bitpos = 0u;
    uint32_t qmin = 0u;
    int64_t prev = -1;
    flt_bitcur_t c;
    if (values) {
        FLT_REQUIRE(r->len - r->pos >= 1u, FLT_ERR_TRUNCATED);
        qmin = r->buf[r->pos];
        FLT_REQUIRE(qmin <= 127u, FLT_ERR_FORMAT);
        r->pos += 1u;
    }
    flt_cur_reset(&c, r, 0u);
    for (j = 0; j < out->k; ++j) {
        uint64_t u;
        if (c.have < 40u) {
            flt_cur_fill(&c, r);
        }
        /* every u = gap - 1 is <= n - 1 */
        FLT_CUR_RICE(&c, r, rice, out->n - 1u, &u);
        FLT_TRY(flt_push_index(out, j, &prev, u + 1u));
        if (values) {
            uint32_t sign = 0u;
            if (c.have < 24u) {
                flt_cur_fill(&c, r);
            }
            /* |q| = qmin + u <= 127 */
            FLT_CUR_RICE(&c, r, vr, 127u - qmin, &u);
            if (qmin + u != 0u) {
                if (c.have == 0u) {
                    flt_cur_fill(&c, r);
                }
                if (c.have > 0u) {
                    sign = (uint32_t)(c.acc >> 63);
                    c.acc <<= 1;
                    c.have -= 1u;
                } else { /* the end of the input: TRUNCATED */
                    flt_cur_sync(&c, r, &bitpos);
                    FLT_TRY(flt_read_bit(r, &bitpos, &sign));
                }
            }
            out->values[j] = (int8_t)(sign ? -(int32_t)(qmin + u) : (int32_t)(qmin + u));
        }
    }
    flt_cur_sync(&c, r, &bitpos);
    if (bitpos != 0u) {
        /* the rest of the last byte is padding and must be zero */
        FLT_REQUIRE((r->buf[r->pos] & (0xffu >> bitpos)) == 0u, FLT_ERR_FORMAT);
        r->pos += 1u;
    }
    return FLT_OK;
}

flt_status_t flt_payload_decode(const uint8_t *buf, size_t len, const flt_payload_limits_t *lim,
                                flt_sparse_delta_t *out)
{
    flt_reader_t r;
    uint32_t fmt;
    uint32_t mode;
    uint32_t rice;
    uint32_t vr;
    uint32_t block;
    uint32_t ns;
    uint32_t j;

    FLT_REQUIRE(lim != NULL && out != NULL && (buf != NULL || len == 0u), FLT_ERR_ARG);
    FLT_REQUIRE(len >= FLT_PAYLOAD_FIXED_SIZE, FLT_ERR_TRUNCATED);
    /* a version-2 payload starts with 'F' (0x46): version nibble 4 */
    FLT_REQUIRE((buf[0] >> 4) == FLT_PAYLOAD_VERSION, FLT_ERR_UNSUPPORTED);
    fmt = buf[0] & 0x03u;
    mode = (buf[0] >> 2) & 0x03u;
    rice = buf[1] & 0x1fu;
    vr = (uint32_t)buf[1] >> 5;
    FLT_REQUIRE(mode <= (uint32_t)FLT_QUANT_BLOCK, FLT_ERR_UNSUPPORTED);
    FLT_REQUIRE(fmt == (uint32_t)FLT_INDEX_RICE_VALUES ||
                    (fmt == (uint32_t)FLT_INDEX_RICE ? vr == 0u : buf[1] == 0u),
                FLT_ERR_FORMAT);
    r.buf = buf;
    r.len = len;
    r.pos = FLT_PAYLOAD_FIXED_SIZE;
    FLT_TRY(flt_varint_get(buf, len, &r.pos, &out->n));
    FLT_TRY(flt_varint_get(buf, len, &r.pos, &out->k));
    block = 0u;
    if (mode == (uint32_t)FLT_QUANT_BLOCK) {
        FLT_TRY(flt_varint_get(buf, len, &r.pos, &block));
        FLT_REQUIRE(block >= 1u && block <= FLT_DELTA_MAX_BLOCK, FLT_ERR_FORMAT);
    }
    out->mode = (mode == (uint32_t)FLT_QUANT_BLOCK) ? FLT_QUANT_BLOCK : FLT_QUANT_TENSOR;
    out->block_size = block;
    FLT_REQUIRE(out->n != 0u, FLT_ERR_FORMAT);
    FLT_REQUIRE(out->n <= lim->n_max, FLT_ERR_OVERSIZE);
    FLT_REQUIRE(out->k <= out->n, FLT_ERR_FORMAT);
    FLT_REQUIRE(out->k <= lim->k_max, FLT_ERR_OVERSIZE);
    ns = flt_delta_num_scales(out->k, out->mode, out->block_size);
    FLT_REQUIRE(ns <= lim->scales_max, FLT_ERR_OVERSIZE);
    FLT_REQUIRE(out->k == 0u || (out->indices != NULL && out->values != NULL), FLT_ERR_ARG);
    FLT_REQUIRE(ns == 0u || out->scales != NULL, FLT_ERR_ARG);

    FLT_REQUIRE(ns <= (r.len - r.pos) / 4u, FLT_ERR_TRUNCATED);
    for (j = 0; j < ns; ++j) {
        uint32_t bits = flt_le_get32(buf + r.pos);
        r.pos += 4u;
        FLT_REQUIRE((bits & FLT_F32_ABS_MASK) < FLT_F32_INF_BITS, FLT_ERR_NONFINITE);
        FLT_REQUIRE((bits & FLT_F32_SIGN_MASK) == 0u, FLT_ERR_RANGE);
        out->scales[j] = flt_f32_from_bits(bits);
    }

    if (fmt == (uint32_t)FLT_INDEX_VARINT) {
        FLT_TRY(flt_decode_varint(&r, out));
    } else if (fmt == (uint32_t)FLT_INDEX_BITMAP) {
        FLT_TRY(flt_decode_bitmap(&r, out));
    } else {
        FLT_TRY(flt_decode_rice(&r, rice, vr, fmt == (uint32_t)FLT_INDEX_RICE_VALUES, out));
    }

    if (fmt != (uint32_t)FLT_INDEX_RICE_VALUES) {
        FLT_REQUIRE(r.len - r.pos >= out->k, FLT_ERR_TRUNCATED);
        for (j = 0; j < out->k; ++j) {
            uint8_t byte = buf[r.pos++];
            FLT_REQUIRE(byte != 0x80u, FLT_ERR_RANGE);
            out->values[j] = (int8_t)(byte >= 0x80u ? (int32_t)byte - 256 : (int32_t)byte);
        }
    }
    /* a zero scale needs zero values (a nonzero tensor scale settles it at once) */
    for (j = 0; j < out->k && !(out->mode == FLT_QUANT_TENSOR && out->scales[0] != 0.0f); ++j) {
        float s = out->scales[(out->mode == FLT_QUANT_TENSOR) ? 0u : j / out->block_size];
        FLT_REQUIRE(s != 0.0f || out->values[j] == 0, FLT_ERR_FORMAT);
    }
    FLT_REQUIRE(r.pos == r.len, FLT_ERR_FORMAT);
    return FLT_OK;
}
