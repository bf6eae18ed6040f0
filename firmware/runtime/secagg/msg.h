/* msg.h - payload codecs of the secure-aggregation messages (docs/protocol.md "Secure
 * aggregation", protocol version 3): BEGIN, ADVERTISE, COHORT, SHARES, MASKED, UNMASK, REVEAL.
 * Host binding: fltiny/native/secagg.py.
 *
 * Part of secagg/. Depends on core/ only.
 *
 * Layouts (little-endian; "ids" are device ids, strictly increasing in every list)
 *   BEGIN     host->dev  epoch u32, round u32                                         8 B
 *   ADVERTISE dev->host  epoch u32, round u32, channel pk [32], mask pk [32]           72 B
 *   COHORT    host->dev  round u32, epoch u32, index seed u32, k u32, scale f32, qmax u32,
 *                        t u16, n u16, w u8, 3 zero bytes; n x (id u32, channel pk [32],
 *                        mask pk [32])                                          32 + 68 n B
 *   SHARES    both       round u32, count u16, 2 zero bytes; count x (peer id u32, box [80])
 *                        (dev->host: the box's recipient; host->dev: its sender)  8 + 84 c B
 *   MASKED    dev->host  round u32, k u32, w u8, 3 zero bytes; k values of w / 8 bytes each
 *                        (the low w bits of each masked value)                12 + k w / 8 B
 *   UNMASK    host->dev  round u32, n_surv u16, n_drop u16; n_surv survivor ids u32, then
 *                        n_drop dropped ids u32 (the two lists disjoint)   8 + 4 (s + d) B
 *   REVEAL    dev->host  round u32, count u16, 2 zero bytes; count x (id u32, kind u8,
 *                        share [32]); kind 0: share of the id's self-mask seed (a
 *                        survivor), 1: share of its round mask secret (dropped)   8 + 37 c B
 *
 * Contract
 * - flt_sa_<msg>_decode(buf, len, &m) validates and parses one payload; variable parts stay in
 *   buf (m holds pointers into it: buf must outlive m). Entry accessors (flt_sa_cohort_member,
 *   flt_sa_entry_id, ...) read entry i < the decoded count and cannot fail.
 *   flt_sa_<msg>_encode(&m or fields, out, cap, &len) writes one payload from host-side
 *   fields; it checks the same rules, so it never writes what the decoder refuses.
 * - Failures (first wins, checked in wire order; nothing read or written outside the sizes):
 *   FLT_ERR_ARG NULL pointers; FLT_ERR_TRUNCATED shorter than the fixed part or than the
 *   counts say; FLT_ERR_FORMAT bytes after the last entry, nonzero reserved bytes, a list not
 *   strictly increasing, an id in both UNMASK lists, a REVEAL kind above 1;
 *   FLT_ERR_UNSUPPORTED w other than 8, 16 or 32; FLT_ERR_NONFINITE scale inf or NaN;
 *   FLT_ERR_RANGE a count or field out of range: COHORT n in 2..FLT_SECAGG_MAX_COHORT, t in
 *   1..n-1 with 2t > n - 1 (a majority of each device's peers: a server that tells two groups
 *   of survivors different stories cannot collect t shares of both of one device's secrets,
 *   and a small t would hand it one device's update), k in 1..FLT_SECAGG_MAX_VALUES, scale > 0,
 * qmax in 1..2^24 with n * qmax < 2^(w-1) (the sum of n values cannot wrap); SHARES and REVEAL
 * count <= MAX_COHORT - 1; MASKED k in 1..FLT_SECAGG_MAX_VALUES; UNMASK n_surv >= 1, n_surv +
 * n_drop <= MAX_COHORT; FLT_ERR_NOMEM encode: cap too small.
 */
#ifndef FLT_SECAGG_MSG_H
#define FLT_SECAGG_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#ifndef FLT_SECAGG_MAX_COHORT
#define FLT_SECAGG_MAX_COHORT 16u /* devices per round (the RAM of flt_secagg_client_t) */
#endif

#define FLT_SA_BEGIN_SIZE 8u
#define FLT_SA_ADVERTISE_SIZE 72u
#define FLT_SA_COHORT_HEADER 32u
#define FLT_SA_COHORT_ENTRY 68u
#define FLT_SA_SHARES_HEADER 8u
#define FLT_SA_SHARES_ENTRY 84u
#define FLT_SA_MASKED_HEADER 12u
#define FLT_SA_UNMASK_HEADER 8u
#define FLT_SA_REVEAL_HEADER 8u
#define FLT_SA_REVEAL_ENTRY 37u
#define FLT_SA_KIND_SELF 0u /* a survivor's self-mask seed b */
#define FLT_SA_KIND_MASK 1u /* a dropped device's round mask secret s */

typedef struct {
    uint32_t epoch;
    uint32_t round;
} flt_sa_begin_t;

typedef struct {
    uint32_t epoch;
    uint32_t round;
    uint8_t chan_pk[32];
    uint8_t mask_pk[32];
} flt_sa_advertise_t;

typedef struct {
    uint32_t round, epoch, index_seed, k;
    float scale;
    uint32_t qmax;
    uint16_t t, n;
    uint8_t w;
    const uint8_t *members; /* n entries of FLT_SA_COHORT_ENTRY bytes, inside the buffer */
} flt_sa_cohort_t;

typedef struct {
    uint32_t round;
    uint16_t count;
    const uint8_t *entries; /* count x FLT_SA_SHARES_ENTRY */
} flt_sa_shares_t;

typedef struct {
    uint32_t round, k;
    uint8_t w;
    const uint8_t *values; /* k x w / 8 bytes */
} flt_sa_masked_t;

typedef struct {
    uint32_t round;
    uint16_t n_surv, n_drop;
    const uint8_t *ids; /* n_surv + n_drop x u32 */
} flt_sa_unmask_t;

typedef struct {
    uint32_t round;
    uint16_t count;
    const uint8_t *entries; /* count x FLT_SA_REVEAL_ENTRY */
} flt_sa_reveal_t;

FLT_NODISCARD flt_status_t flt_sa_begin_decode(const uint8_t *buf, size_t len, flt_sa_begin_t *m);
FLT_NODISCARD flt_status_t flt_sa_begin_encode(const flt_sa_begin_t *m, uint8_t *out, size_t cap,
                                               size_t *len);
FLT_NODISCARD flt_status_t flt_sa_advertise_decode(const uint8_t *buf, size_t len,
                                                   flt_sa_advertise_t *m);
FLT_NODISCARD flt_status_t flt_sa_advertise_encode(const flt_sa_advertise_t *m, uint8_t *out,
                                                   size_t cap, size_t *len);
FLT_NODISCARD flt_status_t flt_sa_cohort_decode(const uint8_t *buf, size_t len, flt_sa_cohort_t *m);
/* m->members: n entries laid out as on the wire (the encoder copies them) */
FLT_NODISCARD flt_status_t flt_sa_cohort_encode(const flt_sa_cohort_t *m, uint8_t *out, size_t cap,
                                                size_t *len);
FLT_NODISCARD flt_status_t flt_sa_shares_decode(const uint8_t *buf, size_t len, flt_sa_shares_t *m);
FLT_NODISCARD flt_status_t flt_sa_shares_encode(const flt_sa_shares_t *m, uint8_t *out, size_t cap,
                                                size_t *len);
FLT_NODISCARD flt_status_t flt_sa_masked_decode(const uint8_t *buf, size_t len, flt_sa_masked_t *m);
/* values: k words; the low w bits of each are written */
FLT_NODISCARD flt_status_t flt_sa_masked_encode(uint32_t round, uint8_t w, const uint32_t *values,
                                                uint32_t k, uint8_t *out, size_t cap, size_t *len);
FLT_NODISCARD flt_status_t flt_sa_unmask_decode(const uint8_t *buf, size_t len, flt_sa_unmask_t *m);
FLT_NODISCARD flt_status_t flt_sa_unmask_encode(const flt_sa_unmask_t *m, uint8_t *out, size_t cap,
                                                size_t *len);
FLT_NODISCARD flt_status_t flt_sa_reveal_decode(const uint8_t *buf, size_t len, flt_sa_reveal_t *m);
FLT_NODISCARD flt_status_t flt_sa_reveal_encode(const flt_sa_reveal_t *m, uint8_t *out, size_t cap,
                                                size_t *len);

/* entry accessors (i below the decoded count) */
uint32_t flt_sa_cohort_id(const flt_sa_cohort_t *m, uint32_t i);
const uint8_t *flt_sa_cohort_chan_pk(const flt_sa_cohort_t *m, uint32_t i);
const uint8_t *flt_sa_cohort_mask_pk(const flt_sa_cohort_t *m, uint32_t i);
uint32_t flt_sa_masked_value(const flt_sa_masked_t *m, uint32_t j);
uint32_t flt_sa_unmask_id(const flt_sa_unmask_t *m, uint32_t i); /* survivors, then dropped */

#endif /* FLT_SECAGG_MSG_H */
